"""The nightly sweep (SPEC §4): load snapshots, apply §3, write cleaned datasets, write the report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from gdpr_sweep.registry import Registry, Snapshot, format_time
from gdpr_sweep.version import code_version
from pipelines import report as reports
from pipelines import storage
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
    raw_still_held,
    verify_versions,
    write_version,
)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def load_blacklist(settings: Settings) -> Snapshot:
    return Registry(settings.blacklist_db).snapshot()


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
                 verification: Verification, raw_deleted: list[str]) -> Path:
    entries = [reports.EntryInfo(r.blacklist_id, r.created_at, r.scope) for r in blacklist.records]
    held = [p for ds in settings.datasets for p in raw_still_held(ds)]
    report = reports.build_report(run, entries, outcomes, verification, raw_deleted, held, datetime.now(UTC))
    json_path, md_path = reports.report_paths(settings.report_dir, run.run_id)
    storage.write_json_atomic(json_path, report)
    storage.write_text_atomic(md_path, reports.render_markdown(report))
    if report["overdue_entries"]:
        raise SweepError(f"{len(report['overdue_entries'])} blacklist entries older than "
                         f"{settings.deadline_hours:g} h still hold data; see {md_path}")
    return json_path


@flow(name="gdpr_sweep", log_prints=False)
def gdpr_sweep(config: str = "gdpr-sweep.toml") -> str:
    """Sweep every configured dataset against the blacklist; return the report's path."""
    settings = load_settings(Path(config))
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
        path = write_report(settings, run, blacklist, outcomes, verification, raw_deleted)
    logger.info("run %s: %d rows removed across %d datasets; report %s",
                run_id, sum(o.rows_removed for o in outcomes), len(outcomes), path)
    return str(path)
