"""Targeted operations called from the CLI, the HTTP API and the flows: ClearUserData, ingest, suppress.

Each takes the typed `Settings` loaded at the edge, runs its steps in order through the `step` it is
given (directly for the CLI and the HTTP API, as Prefect tasks for the flows: `pipelines/operations/steps.py`,
docs/decisions/0212-one-implementation-per-operation.md), and returns a JSON-able summary that names
entries by BlacklistId and never carries an email.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.config.settings import DatasetConfig, Settings
from pipelines.core.errors import DataFileError, InputError, NotFound
from pipelines.core.match import connect
from pipelines.core.model import DatasetOutcome, DatasetPlan, MatchResult, Verification
from pipelines.core.version import code_version
from pipelines.datasets import storage
from pipelines.datasets.factory import open_dataset
from pipelines.datasets.raw import RawFile, raw_status, raw_unchecked
from pipelines.datasets.scaleout import open_connection
from pipelines.datasets.sweep import publish_version
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
from pipelines.operations.steps import Step, direct
from pipelines.operations.suppress import REASONS, find_recipient_columns, split_recipients, suppression_list
from pipelines.registry.holds import HoldStore
from pipelines.registry.links import remember_found, remembered_links
from pipelines.registry.registry import Record, Registry, Snapshot, format_time

Written = list[tuple[DatasetPlan, DatasetOutcome]]
RAW_NOT_CHECKED = ("ClearUserData does not read raw snapshots unless asked (--check-raw); the nightly sweep's "
                   "report checks every raw file")


def new_run_id(moment: datetime, kind: str) -> str:
    return f"{moment.strftime('%Y%m%dT%H%M%S%fZ')}-{kind}"


def find_entry(registry: Registry, blacklist_id: str) -> tuple[Record, int]:
    """The entry and the blacklist version it was read at; NotFound when there is none."""
    snapshot = registry.snapshot()
    for record in snapshot.records:
        if record.blacklist_id == blacklist_id:
            return record, snapshot.version
    raise NotFound(f"no blacklist entry with id {blacklist_id[:64]!r}")


def clear_user_data(settings: Settings, blacklist_id: str, check_raw: bool = False,
                    step: Step = direct, started: datetime | None = None) -> dict[str, Any]:
    """Remove one blacklist entry's profiles, events and linked devices now (Optimizely ClearUserData).

    Raises NotFound when there is no such entry, or when no profile carries the entry's email (or,
    for an entry without an email, its user id); nothing is changed then. Otherwise only the files
    holding the entry's rows are rewritten, each changed dataset gets a new version swapped in
    atomically, and a small audit report is written. Returns ids and counts, never the email.
    Raw snapshot files are not changed; with `check_raw` the report counts the entry's rows in each
    (a second full read of the raw files), otherwise it lists them as not checked.
    `step` runs each step: `direct` (CLI, HTTP API) or as a Prefect task (`flows/clear_user_data.py`).
    `started` (default now) names the run: `new_run_id(started, "clear")`, the report folder's name.
    """
    started = started or datetime.now(UTC)
    run_id = new_run_id(started, "clear")
    with storage.run_lock(settings.work_dir):
        target = step("load_entry", load_entry, retry=True)(settings, blacklist_id)
        plans = [step("extract", plan_current, retry=True)(settings, ds) for ds in settings.datasets]
        kept = step("load_holds", load_holds, retry=True)(settings)  # rows under a retention hold stay
        matches = step("match", match_and_remember)(settings, target, plans, kept, run_id)
        written = step("purge", purge_entry)(settings, plans, matches, run_id)
        verification = step("verify", verify_cleared)(settings, target, written, matches, kept)
        step("publish", publish_entry)(settings, target, written)
        held = step("check_raw", raw_copies)(settings, target, matches, check_raw)
        run = ClearRun(run_id, format_time(started), format_time(datetime.now(UTC)), code_version(),
                       target.blacklist_version, blacklist_id, str(settings.config_path))
        return step("write_report", report_clear)(settings, run, plans, written, verification, held)


# The steps of ClearUserData, in the order `clear_user_data` runs them.


def load_entry(settings: Settings, blacklist_id: str) -> ClearTarget:
    record, version = find_entry(Registry(settings.blacklist_db), blacklist_id)
    return clear_target(record.to_entry(), version)


def load_holds(settings: Settings) -> pa.Table:
    """The active retention holds, read once: the match and the verification keep the same rows
    (pipelines/registry/holds.py)."""
    return HoldStore(settings).held_now()


def match_and_remember(settings: Settings, target: ClearTarget, plans: list[DatasetPlan], kept: pa.Table,
                       run_id: str) -> MatchResult:
    """§3 for the one entry with its remembered device links; the links its rows make are kept before
    those rows are removed (docs/decisions/0211-remembered-device-links.md)."""
    with open_connection(settings) as con:
        found = match_entry(con, target, plans, settings.link_devices_through_events,
                            remembered_links(settings, target.entries), kept)
    remember_found(settings, [found.identity_hits], settings.datasets, run_id)
    return found


def verify_cleared(settings: Settings, target: ClearTarget, written: Written, matches: MatchResult,
                   kept: pa.Table) -> Verification:
    with open_connection(settings) as con:
        return verify_entry(con, settings, target, written, matches, kept)


def raw_copies(settings: Settings, target: ClearTarget, matches: MatchResult, read: bool) -> list[RawFile]:
    if not read:
        return raw_unchecked(settings.datasets, RAW_NOT_CHECKED)
    with connect(settings.duckdb_memory_limit) as con:
        return raw_status(con, target.entries, settings.datasets, settings.link_devices_through_events,
                          matches.linked_devices)


def report_clear(settings: Settings, run: ClearRun, plans: list[DatasetPlan], written: Written,
                 verification: Verification, held: list[RawFile]) -> dict[str, Any]:
    path, report = write_clear_report(settings.report_dir, run, plans, written, verification, held)
    return clear_summary(path, report)


def force_delete_raw(settings: Settings, delete_raw: bool | None) -> Settings:
    """Settings with `delete_raw` set for every dataset: the `--delete-raw` / `--keep-raw` flag beats
    the file. None leaves the settings as they are."""
    if delete_raw is None:
        return settings
    return dataclasses.replace(settings, delete_raw=delete_raw, datasets=tuple(
        dataclasses.replace(ds, delete_raw=delete_raw) for ds in settings.datasets))


def wants_delete_raw(settings: Settings, config: DatasetConfig, flag: bool | None) -> bool:
    """The `--delete-raw` flag if given, else the dataset's `delete_raw`, else `[sweep] delete_raw`."""
    if flag is not None:
        return flag
    return config.delete_raw if config.delete_raw is not None else settings.delete_raw


def ingest_batch(settings: Settings, dataset: str, batch_path: Path, delete_raw: bool | None = None,
                 step: Step = direct, started: datetime | None = None) -> dict[str, Any]:
    """Guard one batch into a dataset: drop its blacklisted rows, append the rest as a new version.

    A batch whose bytes were ingested before is reported as a duplicate and adds nothing. With
    `delete_raw` (or the configuration's), the batch file is deleted once its rows are published.
    `step` runs each step: `direct` (CLI) or as a Prefect task (`flows/ingest.py`). `started` (default
    now) names the run: `new_run_id(started, "ingest")`.
    """
    config = settings.dataset(dataset)
    delete = wants_delete_raw(settings, config, delete_raw)
    started = started or datetime.now(UTC)
    run_id = new_run_id(started, "ingest")
    tmp_dir = settings.work_dir / "tmp" / run_id
    try:
        with storage.run_lock(settings.work_dir):
            open_dataset(config, settings).check_takes_batches()  # before the batch is read
            job = step("extract", extract_batch)(settings, config, Path(batch_path), run_id, tmp_dir)
            snapshot = step("load_blacklist", load_blacklist, retry=True)(settings)
            stats, outcome, found, deleted = None, None, 0, []
            if job.duplicate is None:
                entries = snapshot.entries_table()
                matches, stats = step("match", match_batch_and_remember)(settings, entries, job, run_id)
                outcome = step("purge", write_batch)(job, matches, stats, run_id, snapshot.version,
                                                     format_time(started))
                found = step("verify", verify_ingested)(settings, entries, job, outcome, stats, matches)
                deleted = step("publish", publish_batch)(job, outcome, delete)
            else:
                deleted = delete_batch(job, delete)
            run = IngestRun(run_id, format_time(started), format_time(datetime.now(UTC)), code_version(),
                            snapshot.version, str(settings.config_path))
            return step("write_report", report_ingest)(settings, run, job, stats, outcome, found, deleted)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


# The steps of the ingest guard, in the order `ingest_batch` runs them.


def load_blacklist(settings: Settings) -> Snapshot:
    return Registry(settings.blacklist_db).snapshot()


def match_batch_and_remember(settings: Settings, entries: pa.Table, job: IngestJob,
                             run_id: str) -> tuple[MatchResult, IngestStats]:
    """§3 on the batch with the remembered device links; the links its rows make are kept before
    those rows are dropped (docs/decisions/0211-remembered-device-links.md)."""
    with open_connection(settings) as con:
        found = match_batch(con, entries, job, settings.link_devices_through_events,
                            remembered_links(settings, entries))
    remember_found(settings, [found[0].identity_hits], settings.datasets, run_id)
    return found


def verify_ingested(settings: Settings, entries: pa.Table, job: IngestJob, outcome: DatasetOutcome,
                    stats: IngestStats, matches: MatchResult) -> int:
    with open_connection(settings) as con:
        return verify_written_batch(con, entries, job, outcome, stats, matches, settings.link_devices_through_events)


def publish_batch(job: IngestJob, outcome: DatasetOutcome, delete: bool) -> list[str]:
    """Swap the new version in, then delete the consumed batch file when asked."""
    publish_version(job.config, outcome)
    return delete_batch(job, delete)


def report_ingest(settings: Settings, run: IngestRun, job: IngestJob, stats: IngestStats | None,
                  outcome: DatasetOutcome | None, found: int, deleted: list[str]) -> dict[str, Any]:
    path, report = write_ingest_report(settings.report_dir, run, job, stats, outcome, found, deleted)
    return ingest_summary(path, report)


_TABLE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _table_format(path: Path) -> str:
    fmt = _TABLE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown file format; use .csv or .parquet")
    return fmt


def read_table_file(path: Path) -> pa.Table:
    """A CSV (every column read as text, exactly as written) or Parquet file; InputError naming it."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if _table_format(path) == "parquet":
        try:
            return pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise DataFileError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
        if not header:
            raise InputError(f"{path}: empty CSV file (expected a header line)")
        text = {name: pa.string() for name in header}
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types=text, strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, UnicodeDecodeError, csv.Error) as exc:
        detail = ":".join(str(exc).splitlines()[0].split(":")[:2])  # Arrow appends the row's text: never echo it
        raise InputError(f"{path}: not a readable CSV file ({detail[:120]})") from None


def write_table_file(table: pa.Table, path: Path, like: Path) -> None:
    """Write `table` in the format of `path` through a temporary name (mode 0640); Parquet keeps
    the codec of `like`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if _table_format(path) == "csv":
            pacsv.write_csv(table, tmp)
        else:
            codec = "zstd"
            if _table_format(like) == "parquet":
                meta = pq.ParquetFile(like).metadata
                if meta.num_row_groups and meta.num_columns:
                    codec = meta.row_group(0).column(0).compression.lower()
            pq.write_table(table, tmp, compression="none" if codec == "uncompressed" else codec)
        os.chmod(tmp, storage.FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def suppress_file(settings: Settings, path: Path, allowed: Path | None = None, failed: Path | None = None, *,
                  email_column: str | None = None, user_id_column: str | None = None,
                  scope_column: str | None = None, scope: str | None = None) -> dict[str, Any]:
    """Split an outgoing message or audience file into an allowed file and a failed file whose rows
    carry the reason `blacklisted` or `unparseable` (pipelines/operations/suppress.py). Outputs default to
    `<name>.allowed.<ext>` / `<name>.failed.<ext>`."""
    path = Path(path)
    table = read_table_file(path)
    cols = find_recipient_columns(table.schema, email_column, user_id_column, scope_column, scope, str(path))
    snapshot = Registry(settings.blacklist_db).snapshot()
    result = split_recipients(table, snapshot.entries, cols)
    allowed = Path(allowed) if allowed else path.with_name(f"{path.stem}.allowed{path.suffix}")
    failed = Path(failed) if failed else path.with_name(f"{path.stem}.failed{path.suffix}")
    if len({path.resolve(), allowed.resolve(), failed.resolve()}) != 3:
        raise InputError(f"{path}: the input, allowed and failed files must be three different files")
    for out in (allowed, failed):
        _table_format(out)
    write_table_file(result.failed, failed, path)
    write_table_file(result.allowed, allowed, path)
    return {"file": str(path), "blacklist_version": snapshot.version, "rows_in": result.rows_in,
            "allowed": result.allowed.num_rows, "failed": result.failed.num_rows,
            "failed_by_reason": {reason: result.by_reason.get(reason, 0) for reason in REASONS},
            "reason_column": result.reason_column, "allowed_file": str(allowed), "failed_file": str(failed),
            "columns": {"email": cols.email, "user_id": cols.user_id, "scope": cols.scope}}


def export_suppression_list(settings: Settings, out: Path | None, hashed: bool = False,
                            scope: str | None = None) -> tuple[str, dict[str, Any]]:
    """The suppression list as text (one line per address, or per SHA-256), written to `out` when given."""
    snapshot = Registry(settings.blacklist_db).snapshot()
    entries = snapshot.entries
    lines = suppression_list(entries, hashed=hashed, scope=scope)
    text = "".join(f"{line}\n" for line in lines)
    if out is not None:
        storage.write_text_atomic(Path(out), text)
    summary = {"count": len(lines), "hashed": hashed, "scope": scope, "blacklist_version": snapshot.version,
               "entries_without_email": sum(1 for e in entries if not e.email),
               "out": str(out) if out is not None else None}
    return text, summary
