"""Ingest guard (§4): check a new batch against the blacklist before it joins the cleaned data."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipelines.config.secret_blocks import with_secret_blocks
from pipelines.config.settings import Settings, load_settings
from pipelines.core.match import connect
from pipelines.core.model import DatasetOutcome, MatchResult
from pipelines.core.version import code_version
from pipelines.datasets import storage
from pipelines.datasets.sweep import publish_version
from pipelines.operations.ingest import (
    IngestJob,
    IngestRun,
    IngestStats,
    delete_batch,
    extract_batch,
    ingest_summary,
    match_batch,
    verify_written_batch,
    write_batch,
    write_ingest_report,
)
from pipelines.operations.targeted import new_run_id, wants_delete_raw
from pipelines.registry.links import remember_found, remembered_links
from pipelines.registry.registry import Registry, Snapshot, format_time


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def load_blacklist(settings: Settings) -> Snapshot:
    return Registry(settings.blacklist_db).snapshot()


@task(cache_policy=NO_CACHE)
def extract(settings: Settings, dataset: str, batch: str, run_id: str, tmp_dir: Path) -> IngestJob:
    return extract_batch(settings.datasets, settings.dataset(dataset), Path(batch), run_id, tmp_dir)


@task(cache_policy=NO_CACHE)
def match(settings: Settings, entries: pa.Table, job: IngestJob, run_id: str) -> tuple[MatchResult, IngestStats]:
    """§3 on the batch with the remembered device links; the links its rows make are kept before
    those rows are dropped (docs/decisions/0211-remembered-device-links.md)."""
    with connect(settings.duckdb_memory_limit) as con:
        found = match_batch(con, entries, job, settings.link_devices_through_events,
                            remembered_links(settings, entries))
    remember_found(settings, [found[0].identity_hits], settings.datasets, run_id)
    return found


@task(cache_policy=NO_CACHE)
def purge(job: IngestJob, matches: MatchResult, stats: IngestStats, run_id: str, blacklist: Snapshot,
          at: str) -> DatasetOutcome:
    return write_batch(job, matches, stats, run_id, blacklist.version, at)


@task(cache_policy=NO_CACHE)
def verify(settings: Settings, entries: pa.Table, job: IngestJob, outcome: DatasetOutcome, stats: IngestStats,
           matches: MatchResult) -> int:
    with connect(settings.duckdb_memory_limit) as con:
        return verify_written_batch(con, entries, job, outcome, stats, matches, settings.link_devices_through_events)


@task(cache_policy=NO_CACHE)
def publish(job: IngestJob, outcome: DatasetOutcome, delete: bool) -> list[str]:
    publish_version(job.config, outcome)
    return delete_batch(job, delete)


@task(cache_policy=NO_CACHE)
def write_report(settings: Settings, run: IngestRun, job: IngestJob, stats: IngestStats | None,
                 outcome: DatasetOutcome | None, found: int, deleted: list[str]) -> dict[str, Any]:
    path, report = write_ingest_report(settings.report_dir, run, job, stats, outcome, found, deleted)
    return ingest_summary(path, report)


@flow(name="ingest", log_prints=False)
def ingest(dataset: str, batch: str, config: str = "gdpr-sweep.toml", delete_raw: bool | None = None) -> dict[str, Any]:
    """Drop a batch's blacklisted rows and append the rest to `dataset` atomically; a batch seen
    before adds nothing. `delete_raw` overrides the configuration for the batch file."""
    settings = with_secret_blocks(load_settings(Path(config)))
    started = datetime.now(UTC)
    run_id = new_run_id(started, "ingest")
    tmp_dir = settings.work_dir / "tmp" / run_id
    delete = wants_delete_raw(settings, settings.dataset(dataset), delete_raw)
    try:
        with storage.run_lock(settings.work_dir):
            job = extract(settings, dataset, batch, run_id, tmp_dir)
            blacklist = load_blacklist(settings)
            stats, outcome, found, deleted = None, None, 0, []
            if job.duplicate is None:
                entries = blacklist.entries_table()
                matches, stats = match(settings, entries, job, run_id)
                outcome = purge(job, matches, stats, run_id, blacklist, format_time(started))
                found = verify(settings, entries, job, outcome, stats, matches)
                deleted = publish(job, outcome, delete)
            elif delete:
                deleted = delete_batch(job, delete)
            run = IngestRun(run_id, format_time(started), format_time(datetime.now(UTC)), code_version(),
                            blacklist.version, str(settings.config_path))
            summary = write_report(settings, run, job, stats, outcome, found, deleted)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    get_run_logger().info("ingest %s into %s: %d rows in, %d appended, %d dropped%s; report %s", run_id, dataset,
                          summary["rows_in"], summary["rows_appended"], summary["rows_dropped"],
                          " (duplicate batch)" if summary["duplicate"] else "", summary["report"])
    return summary
