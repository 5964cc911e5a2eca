"""The nightly sweep (SPEC §4): load snapshots, apply §3, write cleaned datasets, write the report."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from gdpr_sweep.operations import force_delete_raw
from gdpr_sweep.registry import Registry, Snapshot, format_time
from gdpr_sweep.report_secret import report_secret
from gdpr_sweep.version import code_version
from pipelines import report as reports
from pipelines import storage
from pipelines.audit import write_audit_report
from pipelines.commands import read_commands
from pipelines.errors import SweepError
from pipelines.match import MatchResult, connect, entries_table, find_matches, with_versions
from pipelines.settings import DatasetConfig, Settings, load_settings
from pipelines.sweep import (
    DatasetOutcome,
    DatasetPlan,
    Verification,
    delete_consumed_raw,
    match_fingerprint,
    plan_dataset,
    publish_version,
    verify_versions,
    write_version,
)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def load_blacklist(settings: Settings) -> Snapshot:
    registry = Registry(settings.blacklist_db)
    for ds in settings.datasets:  # Blacklisted / Whitelisted events in the snapshot set the status first
        batch = read_commands(ds)
        if batch.items:
            registry.apply_events(batch.items, channel="event", numbers=batch.origins)
    return registry.snapshot()


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def extract(config: DatasetConfig, fingerprint: str) -> DatasetPlan:
    return plan_dataset(config, fingerprint)


@task(cache_policy=NO_CACHE)
def match(settings: Settings, blacklist: Snapshot, plans: list[DatasetPlan]) -> MatchResult:
    # Incremental: clean files are matched only against entries added since their last verification.
    entries = with_versions(entries_table(blacklist.entries), blacklist.added)
    with connect(settings.duckdb_memory_limit) as con:
        return find_matches(con, entries, [p.as_input(blacklist.version) for p in plans],
                            settings.link_devices_through_events)


@task(cache_policy=NO_CACHE)
def purge(plan: DatasetPlan, matches: MatchResult, run_id: str, blacklist: Snapshot, fingerprint: str) -> DatasetOutcome:
    return write_version(plan, matches.datasets[plan.config.name], run_id, blacklist.version, fingerprint)


@task(cache_policy=NO_CACHE)
def verify(settings: Settings, blacklist: Snapshot, outcomes: list[DatasetOutcome], matches: MatchResult) -> Verification:
    with connect(settings.duckdb_memory_limit) as con:
        return verify_versions(con, entries_table(blacklist.entries), outcomes, settings.datasets, matches,
                               settings.link_devices_through_events)


@task(cache_policy=NO_CACHE)
def publish(settings: Settings, plans: list[DatasetPlan], outcomes: list[DatasetOutcome]) -> list[str]:
    deleted: list[str] = []
    for plan, outcome in zip(plans, outcomes, strict=True):
        publish_version(plan.config, outcome)
        if plan.config.delete_raw if plan.config.delete_raw is not None else settings.delete_raw:
            deleted += delete_consumed_raw(plan)
    return deleted


@task(cache_policy=NO_CACHE)
def write_report(settings: Settings, run: reports.RunInfo, blacklist: Snapshot, outcomes: list[DatasetOutcome],
                 verification: Verification, raw_deleted: list[str], matches: MatchResult) -> dict[str, Any]:
    """Write the sealed report (JSON, Markdown, HTML) into the report chain; return it."""
    now = datetime.now(UTC)
    created = {r.blacklist_id: r.created_at for r in blacklist.records}
    path, report = write_audit_report(settings, run, blacklist.entries, created, outcomes, verification,
                                      raw_deleted, matches.linked_devices, report_secret(settings), now,
                                      format_time(now))
    return {"path": str(path), "report": report}


@task(cache_policy=NO_CACHE)
def publish_artifacts(written: dict[str, Any]) -> None:
    """Show the report on the flow run in the Prefect UI: a summary and one table per dataset."""
    report = written["report"]
    create_markdown_artifact(markdown=reports.summary_markdown(report, written["path"]), key="gdpr-sweep-report",
                             description=f"gdpr-sweep report {report['run']['run_id']}")
    for d in report["datasets"]:
        create_table_artifact(table=reports.dataset_table(d), key=f"gdpr-sweep-dataset-{_artifact_key(d['name'])}",
                              description=f"{d['name']}: files, rows in/out/removed, output SHA-256")
    create_table_artifact(table=reports.deadline_table(report), key="gdpr-sweep-deadline",
                          description="Blacklist entries: created, first verified gone, rows still present")


def _artifact_key(name: str) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "dataset"


@flow(name="gdpr_sweep", log_prints=False)
def gdpr_sweep(config: str = "gdpr-sweep.toml", delete_raw: bool | None = None) -> str:
    """Sweep every configured dataset against the blacklist; return the report's path.

    `delete_raw` True/False overrides every dataset's `delete_raw` (the CLI's `--delete-raw`/`--keep-raw`)."""
    settings = force_delete_raw(load_settings(Path(config)), delete_raw)
    logger = get_run_logger()
    started = datetime.now(UTC)
    run_id = started.strftime("%Y%m%dT%H%M%S%fZ")
    with storage.run_lock(settings.work_dir):
        blacklist = load_blacklist(settings)
        fingerprint = match_fingerprint(settings.datasets, settings.link_devices_through_events)
        plans = [extract(ds, fingerprint) for ds in settings.datasets]
        matches = match(settings, blacklist, plans)
        outcomes = [purge(p, matches, run_id, blacklist, fingerprint) for p in plans]
        verification = verify(settings, blacklist, outcomes, matches)
        if not verification.ok:
            raise SweepError(f"verification found {verification.matches} matching rows in the new outputs; "
                             "nothing was published")
        raw_deleted = publish(settings, plans, outcomes)
        run = reports.RunInfo(run_id, format_time(started), format_time(datetime.now(UTC)), code_version(),
                              blacklist.version, str(settings.config_path), settings.link_devices_through_events,
                              settings.deadline_hours)
        written = write_report(settings, run, blacklist, outcomes, verification, raw_deleted, matches)
        publish_artifacts(written)
        path = written["path"]
        overdue = written["report"]["overdue_entries"]
        if overdue:
            raise SweepError(f"deadline missed: {len(overdue)} blacklist entries older than "
                             f"{settings.deadline_hours:g} h still hold data; see {Path(path).with_suffix('.html')}")
    logger.info("run %s: %d rows removed across %d datasets; report %s",
                run_id, sum(o.rows_removed for o in outcomes), len(outcomes), path)
    return str(path)
