"""The nightly sweep (§4): load snapshots, apply §3, write cleaned datasets, write the report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import pyarrow as pa
from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows import prefect_runs, steps
from flows.retry import retry_unless_input_error
from flows.runners import partitions_per_dataset, task_runner_for
from pipelines.assurance.residual_scan import excluding_held, linked_pairs, residual_failure, scheduled_block
from pipelines.config.report_secret import report_secret
from pipelines.config.secret_blocks import with_secret_blocks
from pipelines.config.settings import DatasetConfig, Settings, load_settings
from pipelines.core.errors import StorageError, SweepError
from pipelines.core.holds import HoldState, recheck_ids, to_settle
from pipelines.core.match import entries_table, with_versions
from pipelines.core.model import (
    DatasetMatches,
    DatasetOutcome,
    DatasetPlan,
    FileOutcome,
    MatchResult,
    Verification,
)
from pipelines.core.version import code_version
from pipelines.datasets import scaleout, storage
from pipelines.datasets.factory import open_dataset
from pipelines.datasets.sweep import match_fingerprint
from pipelines.operations.commands import read_commands
from pipelines.operations.targeted import force_delete_raw
from pipelines.registry.holds import HoldStore
from pipelines.registry.links import remember_found, remembered_links
from pipelines.registry.registry import Registry, Snapshot, format_time
from pipelines.reporting import report as reports
from pipelines.reporting.audit import write_audit_report


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_input_error, cache_policy=NO_CACHE)
def load_blacklist(settings: Settings) -> Snapshot:
    registry = Registry(settings.blacklist_db)
    for ds in settings.datasets:  # Blacklisted / Whitelisted events in the snapshot set the status first
        batch = read_commands(ds, open_dataset(ds, settings).command_files() if ds.event_name else None)
        if batch.items:
            registry.apply_events(batch.items, channel="event", numbers=batch.origins)
    return registry.snapshot()


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_input_error, cache_policy=NO_CACHE)
def load_holds(settings: Settings) -> HoldState:
    """The retention holds in force now, and those that ended since the last sweep (pipelines/core/holds.py)."""
    return HoldState(tuple(HoldStore(settings).for_sweep()), format_time(datetime.now(UTC)))


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_input_error, cache_policy=NO_CACHE)
def extract(settings: Settings, config: DatasetConfig, fingerprint: str) -> DatasetPlan:
    return scaleout.plan(settings, config, fingerprint)


# Per-partition tasks (pipelines/datasets/scaleout.py): the task runner (threads, or a Dask cluster) spreads them.
# Tasks the flow calls directly get their large arguments (the blacklist snapshot, matches, outcomes, the
# report) in `quote(...)`: Prefect otherwise walks every element looking for futures, seconds per run at
# 10,000 entries. Not on `.map`/`.submit`: a Dask runner passes the wrapper through unopened.
T = TypeVar("T")


def passed(value: T) -> T:
    """`passed(value)`, typed as the value itself: Prefect unwraps the quote before the task runs, so the
    task receives `value` unchanged (Prefect's own annotations do not model that)."""
    return cast(T, quote(value))


@task(cache_policy=NO_CACHE)
def link_partition(settings: Settings, entries: pa.Table, plan: DatasetPlan, relpaths: tuple[str, ...],
                   version: int) -> scaleout.Links:
    return scaleout.link_partition(settings, entries, plan, relpaths, version)


@task(cache_policy=NO_CACHE)
def match_partition(settings: Settings, entries: pa.Table, plan: DatasetPlan, relpaths: tuple[str, ...],
                    linked: pa.Table, version: int, own: scaleout.Links, held: pa.Table) -> DatasetMatches:
    return scaleout.match_partition(settings, entries, plan, relpaths, linked, version, own, held)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_input_error, cache_policy=NO_CACHE)
def start_version(settings: Settings, plan: DatasetPlan, run_id: str) -> None:
    scaleout.start_version(settings, plan, run_id)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_input_error, cache_policy=NO_CACHE)
def purge_partition(settings: Settings, plan: DatasetPlan, relpaths: tuple[str, ...], drops: dict[str, Any],
                    run_id: str) -> list[FileOutcome]:
    return scaleout.write_partition(settings, plan, relpaths, drops, run_id)


@task(cache_policy=NO_CACHE)
def finish_dataset(settings: Settings, plan: DatasetPlan, parts: list[list[FileOutcome]], matches: DatasetMatches,
                   run_id: str, blacklist_version: int, fingerprint: str) -> DatasetOutcome:
    files = [f for part in parts for f in part]
    return scaleout.finish_dataset(settings, plan, files, matches, run_id, blacklist_version, fingerprint)


@task(cache_policy=NO_CACHE)
def purge_table(settings: Settings, plan: DatasetPlan, matches: DatasetMatches, run_id: str,
                blacklist_version: int) -> DatasetOutcome:
    return scaleout.purge_table(settings, plan, matches, run_id, blacklist_version)


@task(cache_policy=NO_CACHE)
def verify_partition(settings: Settings, entries: pa.Table, piece: DatasetOutcome, linked: pa.Table,
                     held: pa.Table) -> Verification:
    return scaleout.verify_partition(settings, entries, piece, linked, held)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_input_error, cache_policy=NO_CACHE)
def load_links(settings: Settings, entries: pa.Table) -> pa.Table:
    """The device links remembered with the current entries (§3 rule 3: a link outlives its rows)."""
    return remembered_links(settings, entries)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_input_error, cache_policy=NO_CACHE)
def remember_links(settings: Settings, hits: list[pa.Table], run_id: str) -> int:
    """Keep the links tonight's identity hits make with their entries, before any of those rows is
    removed (docs/decisions/0211-remembered-device-links.md)."""
    return remember_found(settings, hits, settings.datasets, run_id)


def plan_all(settings: Settings, fingerprint: str) -> list[DatasetPlan]:
    """Each dataset's files this run reads (with their identities, decision 0201)."""
    return [steps.run(extract, settings, ds, fingerprint) for ds in settings.datasets]


def match(settings: Settings, blacklist: Snapshot, plans: list[DatasetPlan], run_id: str,
          holds: HoldState) -> MatchResult:
    """§3 over every partition in two mapped passes: identity hits and the devices they link anywhere
    (plus the links remembered from earlier runs), then each partition's device scan and rows to drop
    (rows only held pairs match are kept)."""
    # Every file is matched against every entry, every run (decision 0201): no file's verified version
    # narrows the match. The `added` versions (entries under a hold, or whose hold just ended, as never
    # added) are attached for the match's bookkeeping only; they exclude no entry.
    recheck = recheck_ids(holds.holds, holds.now_text, [e.blacklist_id for e in blacklist.entries])
    entries = with_versions(entries_table(blacklist.entries),
                            {bid: v for bid, v in blacklist.added.items() if bid not in recheck})
    parts = scaleout.partitions(plans, partitions_per_dataset(settings))
    by_name = {p.config.name: p for p in plans}
    files: dict[str, Any] = {"plan": [by_name[x.dataset] for x in parts], "relpaths": [x.relpaths for x in parts]}
    common: dict[str, Any] = {"settings": unmapped(settings), "entries": unmapped(entries), "version": unmapped(blacklist.version)}
    links = steps.map(link_partition, **files, **common).result()
    remembered = steps.run(load_links, settings, passed(entries))
    steps.run(remember_links, settings, passed([x.hits for x in links]), run_id)
    linked = scaleout.union_linked([*(x.linked for x in links), remembered])
    per_part = steps.map(match_partition, **files, **common, linked=unmapped(linked), own=links,
                         held=unmapped(holds.table())).result()
    return scaleout.merge_matches(plans, parts, per_part, linked)


def purge(settings: Settings, plans: list[DatasetPlan], matches: MatchResult, run_id: str, blacklist: Snapshot,
          fingerprint: str) -> list[DatasetOutcome]:
    """Write each dataset's new version: per-file kinds by mapped partitions, table kinds (Delta,
    Iceberg) by one commit of their own."""
    futures: dict[str, Any] = {}
    for p in plans:
        m = matches.datasets[p.config.name]
        if not scaleout.per_file(settings, p):
            futures[p.config.name] = steps.submit(purge_table, settings, p, m, run_id, blacklist.version)
            continue
        kept = scaleout.keep_current(settings, p, m, fingerprint)
        if kept is not None:  # a quiet night: nothing to write
            futures[p.config.name] = kept
            continue
        steps.run(start_version, settings, passed(p), run_id)
        rels = [x.relpaths for x in scaleout.partitions([p], partitions_per_dataset(settings))]
        drops = [{r: m.drops[r] for r in part if r in m.drops} for part in rels]
        futures[p.config.name] = steps.map(purge_partition, settings=unmapped(settings), plan=unmapped(p),
                                           relpaths=rels, drops=drops, run_id=unmapped(run_id))
    outcomes = []
    for p in plans:  # a failed partition raises its own error here (not "UnfinishedRun" of a task after it)
        m = matches.datasets[p.config.name]
        if isinstance(futures[p.config.name], DatasetOutcome):
            outcomes.append(futures[p.config.name])
        elif not scaleout.per_file(settings, p):
            outcomes.append(futures[p.config.name].result())
        else:
            parts = futures[p.config.name].result()
            outcomes.append(steps.run(finish_dataset, settings, passed(p), passed(parts), passed(m), run_id,
                                      blacklist.version, fingerprint))
    return outcomes


def verify(settings: Settings, blacklist: Snapshot, outcomes: list[DatasetOutcome], matches: MatchResult,
           holds: HoldState) -> Verification:
    """Re-read every output file (its row count; §3 again if rewritten, rows kept by a hold excepted)."""
    pieces = scaleout.verification_slices(outcomes, partitions_per_dataset(settings))
    results = steps.map(verify_partition, settings=unmapped(settings), entries=unmapped(entries_table(blacklist.entries)),
                        piece=pieces, linked=unmapped(matches.linked_devices), held=unmapped(holds.table())).result()
    return scaleout.merge_verifications(results)


@task(cache_policy=NO_CACHE)
def publish(settings: Settings, plans: list[DatasetPlan], outcomes: list[DatasetOutcome],
            blacklist: Snapshot, matches: MatchResult) -> tuple[list[str], list[dict[str, str]], list[str]]:
    """Switch each dataset to its new version, then settle its raw files: delete them (`delete_raw`)
    only while they are the files this run read; return what was deleted, every file change, and the
    raw files the file system refused to delete (one-line messages; they are kept)."""
    deleted: list[str] = []
    failures: list[str] = []
    changes = [c.as_dict() for p in plans for c in p.changes if c.what == "changed outside the tool"]
    for plan, outcome in zip(plans, outcomes, strict=True):
        # what a table kind proves gone from its whole location: unscoped entries' emails, except
        # those whose rows a retention hold keeps in this dataset
        held = matches.datasets[plan.config.name].held_by_entry if plan.config.name in matches.datasets else {}
        unscoped_emails = [e.email for e in blacklist.entries
                           if e.email and e.scope is None and not held.get(e.blacklist_id)]
        scaleout.publish(settings, plan, outcome, unscoped_emails)
        settled = scaleout.settle_raw(settings, plan, outcome, plan.config.delete_raw
                                      if plan.config.delete_raw is not None else settings.delete_raw)
        deleted += settled.deleted
        changes += [c.as_dict() for c in settled.changes]
        failures += settled.failures
    return deleted, changes, failures


@task(cache_policy=NO_CACHE)
def residual_scan(settings: Settings, blacklist: Snapshot, matches: MatchResult, holds: HoldState) -> dict[str, Any]:
    """Search every column of the published datasets for blacklisted people, when `[scan] schedule` says so;
    rows a retention hold keeps are not residuals."""
    now = datetime.now(UTC)
    block = scheduled_block(settings, blacklist.entries, linked_pairs(matches.linked_devices), now, format_time(now))
    return excluding_held(block, holds.holds, holds.now_text)


@task(cache_policy=NO_CACHE)
def write_report(settings: Settings, run: reports.RunInfo, blacklist: Snapshot, outcomes: list[DatasetOutcome],
                 verification: Verification, raw_deleted: list[str], matches: MatchResult,
                 residuals: dict[str, Any], holds: HoldState, changes: list[dict[str, str]]) -> dict[str, Any]:
    """Write the sealed report (JSON, Markdown, HTML) into the report chain; then mark the holds that had
    ended as acted on (this run erased what they kept); return the report."""
    now = datetime.now(UTC)
    created = {r.blacklist_id: r.created_at for r in blacklist.records}
    held = holds.with_rows({name: m.held_by_entry for name, m in matches.datasets.items()})
    path, report = write_audit_report(settings, run, blacklist.entries, created, outcomes, verification,
                                      raw_deleted, matches.linked_devices, report_secret(settings), now,
                                      format_time(now), residuals, held, changes)
    HoldStore(settings).settle(to_settle(holds.holds, holds.now_text), run.run_id)
    return {"path": str(path), "report": report}


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_input_error, cache_policy=NO_CACHE)
def upload_report(settings: Settings, path: str) -> list[str]:
    """Copy the run's report folder to `[sweep] report_url` on object storage, when configured."""
    return scaleout.upload_report(settings, path)


@flow(name="gdpr_sweep", log_prints=False)
def gdpr_sweep(config: str = "gdpr-sweep.toml", delete_raw: bool | None = None) -> str:
    """Sweep every configured dataset against the blacklist; return the report's path.

    `delete_raw` True/False overrides every dataset's `delete_raw` (the CLI's `--delete-raw`/`--keep-raw`)."""
    settings = force_delete_raw(with_secret_blocks(load_settings(Path(config))), delete_raw)
    logger = steps.logger(__name__)
    started = datetime.now(UTC)
    run_id = started.strftime("%Y%m%dT%H%M%S%fZ")
    tree = prefect_runs.run_tree()  # this run up to the one the user triggered
    prefect_runs.name_runs(tree, run_id)
    with storage.run_lock(settings.work_dir):
        storage.remove_stale_temporaries(settings.report_dir)  # left by a run that was killed
        blacklist = steps.run(load_blacklist, settings)
        holds = steps.run(load_holds, settings)
        fingerprint = match_fingerprint(settings.datasets, settings.link_devices_through_events)
        plans: list[DatasetPlan] = []
        try:
            # one task per stage on the thread pool, per-partition tasks on Dask (flows/steps.py `stage`)
            plans += steps.stage("extract", plan_all, settings, fingerprint)
            matches = steps.stage("match", match, settings, blacklist, plans, run_id, holds)
            outcomes = steps.stage("purge", purge, settings, plans, matches, run_id, blacklist, fingerprint)
            verification = steps.stage("verify", verify, settings, blacklist, outcomes, matches, holds)
            if not verification.ok:
                raise SweepError(f"verification found {verification.matches} matching rows in the new outputs; "
                                 "nothing was published")
            raw_deleted, changes, undeleted = steps.run(publish, settings, passed(plans), passed(outcomes),
                                                        passed(blacklist), passed(matches))
        except BaseException:
            scaleout.discard_unpublished(settings)  # readers keep the version they see
            raise
        run = reports.RunInfo(run_id, format_time(started), format_time(datetime.now(UTC)), code_version(),
                              blacklist.version, str(settings.config_path), settings.link_devices_through_events,
                              settings.deadline_hours)
        residuals = steps.run(residual_scan, settings, passed(blacklist), passed(matches), passed(holds))
        written = steps.run(write_report, settings, run, passed(blacklist), passed(outcomes), verification, raw_deleted,
                               passed(matches), passed(residuals), passed(holds), changes)
        prefect_runs.publish_report_artifacts(tree, written, settings.report_url)
        if settings.report_url:
            steps.run(upload_report, settings, written["path"])
        path = written["path"]
        if undeleted:  # after the report, which lists them as still held
            more = f" (and {len(undeleted) - 1} more raw files; see {path})" if len(undeleted) > 1 else ""
            raise StorageError(undeleted[0] + more)
        overdue = written["report"]["overdue_entries"]
        if overdue:
            raise SweepError(f"deadline missed: {len(overdue)} blacklist {'entry' if len(overdue) == 1 else 'entries'} "
                             f"older than {settings.deadline_hours:g} h with data still present; "
                             f"see {Path(path).with_suffix('.html')}")
        if residuals["found"] and settings.scan.fail_on_residuals:
            raise SweepError(residual_failure(residuals, path))
    logger.info("run %s: %d rows removed across %d datasets; report %s",
                run_id, sum(o.rows_removed for o in outcomes), len(outcomes), path)
    return str(path)


def configured_sweep(settings: Settings):  # type: ignore[no-untyped-def]
    """The sweep flow on the task runner `[sweep] task_runner` names: threads, or a Dask cluster."""
    return gdpr_sweep.with_options(task_runner=cast(Any, task_runner_for(settings)))  # any runner's futures


@flow(name="gdpr_sweep_nightly", log_prints=False)
def nightly_sweep(config: str = "gdpr-sweep.toml", delete_raw: bool | None = None) -> str:
    """prefect.yaml's nightly entry point: a deployment cannot pick a task runner from the configuration
    itself, so this flow reads it and runs `gdpr_sweep` as a subflow on that runner; return the report's path.

    Artifacts land on this run (the one a schedule or `prefect deployment run` triggered); an expected
    failure ends it Failed with the one-line reason as the state's message (flows/prefect_runs.py)."""
    try:
        return configured_sweep(load_settings(Path(config)))(config=config, delete_raw=delete_raw)
    except SweepError as exc:
        return prefect_runs.failed_with_reason(exc)  # type: ignore[return-value]
