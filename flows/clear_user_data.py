"""ClearUserData (§4): remove one blacklist entry's data now rather than at the next nightly sweep."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipelines.config.secret_blocks import with_secret_blocks
from pipelines.config.settings import DatasetConfig, Settings, load_settings
from pipelines.core.match import connect
from pipelines.core.model import DatasetOutcome, DatasetPlan, MatchResult, Verification
from pipelines.core.version import code_version
from pipelines.datasets import storage
from pipelines.datasets.raw import RawFile, raw_status, raw_unchecked
from pipelines.operations.clear import (
    ClearRun,
    ClearTarget,
    clear_summary,
    clear_target,
    match_entry,
    plan_current,
    publish_entry,
    purge_entry,
    verify_entry,
    write_clear_report,
)
from pipelines.operations.targeted import RAW_NOT_CHECKED, find_entry, new_run_id
from pipelines.registry.holds import HoldStore
from pipelines.registry.links import remember_found, remembered_links
from pipelines.registry.registry import Registry, format_time

Written = list[tuple[DatasetPlan, DatasetOutcome]]


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def load_entry(settings: Settings, blacklist_id: str) -> ClearTarget:
    record, version = find_entry(Registry(settings.blacklist_db), blacklist_id)
    return clear_target(record.to_entry(), version)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def extract(config: DatasetConfig) -> DatasetPlan:
    return plan_current(config)


@task(cache_policy=NO_CACHE)
def match(settings: Settings, target: ClearTarget, plans: list[DatasetPlan], run_id: str) -> MatchResult:
    """§3 for the one entry with its remembered device links; the links its rows make are kept before
    those rows are removed (docs/decisions/0211-remembered-device-links.md)."""
    with connect(settings.duckdb_memory_limit) as con:
        found = match_entry(con, target, plans, settings.link_devices_through_events,
                            remembered_links(settings, target.entries), HoldStore(settings).held_now())
    remember_found(settings, [found.identity_hits], settings.datasets, run_id)
    return found


@task(cache_policy=NO_CACHE)
def purge(plans: list[DatasetPlan], matches: MatchResult, run_id: str) -> Written:
    return purge_entry(plans, matches, run_id)


@task(cache_policy=NO_CACHE)
def verify(settings: Settings, target: ClearTarget, written: Written, matches: MatchResult) -> Verification:
    """Rows an active retention hold keeps are not matches (read again: the same holds unless one ended)."""
    with connect(settings.duckdb_memory_limit) as con:
        return verify_entry(con, target, written, matches, settings.link_devices_through_events,
                            HoldStore(settings).held_now())


@task(cache_policy=NO_CACHE)
def publish(written: Written) -> None:
    publish_entry(written)


@task(cache_policy=NO_CACHE)
def check_raw(settings: Settings, target: ClearTarget, matches: MatchResult, read: bool) -> list[RawFile]:
    if not read:
        return raw_unchecked(settings.datasets, RAW_NOT_CHECKED)
    with connect(settings.duckdb_memory_limit) as con:
        return raw_status(con, target.entries, settings.datasets, settings.link_devices_through_events,
                          matches.linked_devices)


@task(cache_policy=NO_CACHE)
def write_report(settings: Settings, run: ClearRun, plans: list[DatasetPlan], written: Written,
                 verification: Verification, held: list[RawFile]) -> dict[str, Any]:
    path, report = write_clear_report(settings.report_dir, run, plans, written, verification, held)
    return clear_summary(path, report)


@flow(name="clear_user_data", log_prints=False)
def clear_user_data(blacklist_id: str, config: str = "gdpr-sweep.toml", check_raw_files: bool = False) -> dict[str, Any]:
    """Remove one entry's profiles, events and linked devices now; NotFound when no profile carries it.
    With `check_raw_files`, the report also counts the entry's rows in each raw snapshot file still held."""
    settings = with_secret_blocks(load_settings(Path(config)))
    started = datetime.now(UTC)
    run_id = new_run_id(started, "clear")
    with storage.run_lock(settings.work_dir):
        target = load_entry(settings, blacklist_id)
        plans = [extract(ds) for ds in settings.datasets]
        matches = match(settings, target, plans, run_id)
        written = purge(plans, matches, run_id)
        verification = verify(settings, target, written, matches)
        publish(written)
        held = check_raw(settings, target, matches, check_raw_files)
        run = ClearRun(run_id, format_time(started), format_time(datetime.now(UTC)), code_version(),
                       target.blacklist_version, blacklist_id, str(settings.config_path))
        summary = write_report(settings, run, plans, written, verification, held)
    get_run_logger().info("clear %s: entry %s, %d rows removed from %d files; report %s", run_id, blacklist_id,
                          summary["rows_removed"], summary["files_rewritten"], summary["report"])
    return summary
