"""Ingest guard (§4): a new batch is checked against the blacklist before it joins the cleaned data.

Steps (run in order by `pipelines.operations.targeted.ingest_batch`, for the CLI and `flows/ingest.py`):
- Extract: `load_batch` reads a Parquet file, or JSON lines of events (the shape trackers send)
  converted with the dataset's schema (`check_batch_schema`); its SHA-256 identifies it (`duplicate_of`).
- Match: `guard_inputs` puts the batch beside the current profiles datasets (their device ids link
  a batch's anonymous events, rule 3), for `pipelines.core.match.find_matches` with the whole blacklist.
- Purge: `ingest_plan` (current files + the batch minus its matches) for `write_version`. Verify:
  `verify_batch`. Publish: `publish_version`. Report: `build_ingest_report` (`IngestStats`).
Datasets are append-only: a dropped row can neither create nor update a profile (decision 0010).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

from pipelines.config.settings import DatasetConfig, Settings
from pipelines.core.errors import InputError, SchemaError, SweepError
from pipelines.core.match import find_matches
from pipelines.core.model import (
    DatasetInput,
    DatasetMatches,
    DatasetOutcome,
    DatasetPlan,
    FilePlan,
    MatchResult,
)
from pipelines.core.schemas import read_schema
from pipelines.datasets import storage
from pipelines.datasets.raw import RawFile, raw_report
from pipelines.datasets.sweep import write_version
from pipelines.operations.clear import OPERATIONS_DIR, plan_current, raw_markdown, restore_manifest
from pipelines.reporting import chain, report_index

REPORT_VERSION = 2
"""1: first version; 2 adds `integrity` (the report joins the sweep's hash chain, `pipelines.reporting.chain`)."""
BATCHES_KEY = "ingested_batches"
"""Manifest key: batch SHA-256 -> what its ingest did (carried from version to version)."""
_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


@dataclass(frozen=True)
class Batch:
    source: Path
    """The file given to ingest."""
    format: str
    """`parquet` or `jsonl`."""
    sha256: str
    """Of the file's bytes: ingesting the same file again is a duplicate."""
    parquet: Path
    """The batch as Parquet: the file itself, or the JSON lines converted beside the work folder."""
    rows: int
    converted: bool = False


def batch_format(path: Path) -> str:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown batch format; use .parquet, or .jsonl / .ndjson for events")
    return fmt


def dataset_schema(plan: DatasetPlan) -> pa.Schema | None:
    """The schema a batch must have: the dataset's current files', else its raw snapshots', else None."""
    if plan.files:
        return read_schema(plan.files[0].input_path)
    config = plan.config
    if config.source is not None:
        raw = storage.list_parquet(config.source)
        if raw:
            return read_schema(config.source / raw[0])
    return None


def read_jsonl(path: Path, schema: pa.Schema) -> pa.Table:
    """JSON lines -> an Arrow table with exactly `schema`; InputError naming the first line that does not fit."""
    data = path.read_bytes()
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    try:
        table = pj.read_json(io.BytesIO(data), parse_options=options)
    except pa.ArrowInvalid:
        raise _bad_line(path, data, schema, options) from None
    columns = [table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _bad_line(path: Path, data: bytes, schema: pa.Schema, options: pj.ParseOptions) -> InputError:
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            if not isinstance(json.loads(line), dict):
                return InputError(f"{path}, line {number}: expected a JSON object per line")
            pj.read_json(io.BytesIO(line), parse_options=options)
        except ValueError as exc:  # json.JSONDecodeError and pa.ArrowInvalid are both ValueErrors
            reason = "not valid JSON" if isinstance(exc, json.JSONDecodeError) else _field_problem(str(exc))
            return InputError(f"{path}, line {number}: does not fit the dataset's schema ({reason})")
    return InputError(f"{path}: does not fit the dataset's schema ({len(schema)} columns expected)")


def _field_problem(message: str) -> str:
    """Arrow's message without the offending value (it may be an email)."""
    if "couldn't parse" in message:
        return message.split(", couldn't parse")[0]
    return message.split("\n")[0][:200]


def check_batch_schema(config: DatasetConfig, path: Path, actual: pa.Schema, expected: pa.Schema | None) -> None:
    """A batch must have the dataset's schema exactly (names, order, types, nesting)."""
    if expected is None or actual.equals(expected, check_metadata=False):
        return
    missing = [n for n in expected.names if n not in actual.names]
    extra = [n for n in actual.names if n not in expected.names]
    retyped = [n for n in expected.names if n in actual.names and actual.field(n).type != expected.field(n).type]
    detail = "; ".join(part for part in (
        f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else "",
        f"different types {retyped}" if retyped else "",
        "columns in a different order" if not (missing or extra or retyped) else "") if part)
    raise SchemaError(f"dataset {config.name!r}, batch {path}: schema differs from the dataset's ({detail})")


def load_batch(path: Path, config: DatasetConfig, expected: pa.Schema | None, tmp_dir: Path) -> Batch:
    """Read and check a batch; JSON lines are converted to a Parquet file in `tmp_dir` (caller deletes it)."""
    if not path.is_file():
        raise InputError(f"{path}: batch file not found")
    fmt = batch_format(path)
    sha = storage.sha256_file(path)
    if fmt == "parquet":
        schema = read_schema(path)
        check_batch_schema(config, path, schema, expected)
        rows = storage.num_rows(path)
        parquet, converted = path, False
    else:
        if config.kind != "events":
            raise InputError(f"{path}: JSON lines are accepted for events datasets; "
                             f"{config.name!r} holds {config.kind}, ingest a Parquet file")
        if expected is None:
            raise InputError(f"{path}: dataset {config.name!r} has no files yet to take a schema from; "
                             "ingest a Parquet batch first")
        table = read_jsonl(path, expected)
        rows = table.num_rows
        tmp_dir.mkdir(parents=True, exist_ok=True, mode=storage.DIR_MODE)
        parquet, converted = tmp_dir / f"{sha[:16]}.parquet", True
        pq.write_table(table, parquet, compression="zstd", version="2.6")
    if rows == 0:
        raise InputError(f"{path}: the batch has no rows")
    return Batch(path, fmt, sha, parquet, rows, converted)


def duplicate_of(manifest: dict[str, Any], batch: Batch) -> dict[str, Any] | None:
    """What the earlier ingest of the same bytes recorded, or None for a new batch."""
    record = manifest.get(BATCHES_KEY, {}).get(batch.sha256)
    return dict(record) if record is not None else None


def batch_relpath(run_id: str, batch: Batch) -> str:
    return f"ingest/{run_id}-{batch.sha256[:12]}.parquet"


def guard_inputs(config: DatasetConfig, relpath: str, batch: Batch,
                 context: Sequence[DatasetPlan]) -> list[DatasetInput]:
    """The batch as the dataset's only file, beside the current profiles datasets that link devices.

    The target dataset itself appears only as the batch: its stored rows are not re-judged here
    (that is the sweep's job), so a profiles batch needs no context at all.
    """
    inputs = [DatasetInput(config, {relpath: batch.parquet})]
    if config.kind == "events":
        for plan in context:
            if plan.config.kind == "profiles" and plan.config.name != config.name and plan.files:
                inputs.append(plan.as_input())
    return inputs


@dataclass(frozen=True)
class IngestStats:
    """What the guard did to one batch. Rows in = rows appended + rows dropped, checked on creation."""

    rows_in: int
    rows_appended: int
    dropped_by_reason: dict[str, int] = field(default_factory=dict)
    dropped_by_entry: dict[str, int] = field(default_factory=dict)

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped_by_reason.values())

    def __post_init__(self) -> None:
        if self.rows_in != self.rows_appended + self.rows_dropped:
            raise AssertionError(f"batch: rows in {self.rows_in} != appended {self.rows_appended} "
                                 f"+ dropped {self.rows_dropped}")


def batch_stats(batch: Batch, matches: DatasetMatches) -> IngestStats:
    return IngestStats(batch.rows, batch.rows - matches.rows_removed, dict(matches.by_reason),
                       dict(matches.by_entry))


def ingest_plan(current: DatasetPlan, relpath: str, batch: Batch, stats: IngestStats) -> DatasetPlan:
    """The new version's files: the current ones, plus the batch unless every row of it was dropped."""
    if not stats.rows_appended:
        return current
    file = FilePlan(relpath, batch.parquet, "ingest", batch.rows, None if batch.converted else batch.sha256)
    return replace(current, files=(*current.files, file))


def version_matches(matches: DatasetMatches, relpath: str, stats: IngestStats) -> DatasetMatches:
    """The drops `write_version` applies: the batch's only, and none when the batch adds no file."""
    if not stats.rows_appended:
        return DatasetMatches()
    return DatasetMatches(drops={relpath: matches.drops.get(relpath, np.empty(0, dtype=np.int64))},
                          by_reason=dict(matches.by_reason), by_entry=dict(matches.by_entry))


def batch_record(batch: Batch, stats: IngestStats, run_id: str, at: str, relpath: str | None) -> dict[str, Any]:
    """The manifest's memory of one ingested batch (counts and names only)."""
    return {"run_id": run_id, "at": at, "format": batch.format, "file": relpath, "rows_in": stats.rows_in,
            "rows_appended": stats.rows_appended, "rows_dropped": stats.rows_dropped}


def verify_batch(con: duckdb.DuckDBPyConnection, entries: pa.Table, config: DatasetConfig, relpath: str,
                 written: Path, stats: IngestStats, match: MatchResult, link_through_events: bool) -> int:
    """Re-read the written batch file and match it again; return the matches found (must be 0)."""
    if not stats.rows_appended:
        return 0
    rows = storage.num_rows(written)
    if rows != stats.rows_appended:
        raise AssertionError(f"{written}: {rows} rows on disk, {stats.rows_appended} expected")
    again = find_matches(con, entries, [DatasetInput(config, {relpath: written})], link_through_events,
                         extra_linked=match.linked_devices)
    return again.rows_removed


@dataclass(frozen=True)
class IngestRun:
    run_id: str
    started_at: str
    finished_at: str
    code_version: str
    blacklist_version: int
    config_path: str


def build_ingest_report(run: IngestRun, config: DatasetConfig, batch: Batch, stats: IngestStats | None,
                        duplicate: dict[str, Any] | None, output: dict[str, Any] | None, matches_found: int,
                        raw_deleted: Sequence[str], raw_held: Sequence[RawFile]) -> dict[str, Any]:
    """The ingest audit report. `stats` is None for a duplicate batch (nothing was read into the dataset)."""
    return {
        "report_version": REPORT_VERSION,
        "kind": "ingest",
        "run": {"run_id": run.run_id, "started_at": run.started_at, "finished_at": run.finished_at,
                "code_version": run.code_version, "config": run.config_path},
        "blacklist": {"version": run.blacklist_version},
        "dataset": {"name": config.name, "kind": config.kind},
        "batch": {"path": str(batch.source), "format": batch.format, "sha256": batch.sha256, "rows": batch.rows},
        "duplicate": duplicate is not None,
        "duplicate_of": duplicate,
        "rows_in": batch.rows,
        "rows_appended": stats.rows_appended if stats else 0,
        "rows_dropped": stats.rows_dropped if stats else 0,
        "conserved": stats is None or stats.rows_in == stats.rows_appended + stats.rows_dropped,
        "dropped_by_reason": {r: (stats.dropped_by_reason.get(r, 0) if stats else 0)
                              for r in ("email", "user_id", "linked_device")},
        "dropped_by_entry": dict(sorted(stats.dropped_by_entry.items())) if stats else {},
        "output": output,
        "verification": {"matches_found": matches_found, "ok": matches_found == 0},
        "raw_copies": raw_report(raw_deleted, raw_held),
    }


def render_ingest_markdown(report: dict[str, Any]) -> str:
    run, batch = report["run"], report["batch"]
    lines = [f"# gdpr-sweep ingest {run['run_id']}", "",
             f"- Dataset `{report['dataset']['name']}` ({report['dataset']['kind']}); batch `{batch['path']}` "
             f"({batch['format']}, {batch['rows']} rows, sha256 `{batch['sha256'][:16]}…`)",
             f"- Blacklist version {report['blacklist']['version']}; code version {run['code_version']}"]
    if report["duplicate"]:
        lines.append(f"- **Duplicate**: this batch was ingested by run {report['duplicate_of']['run_id']}; "
                     "nothing was added")
    else:
        r = report["dropped_by_reason"]
        lines += [f"- Rows in {report['rows_in']} = appended {report['rows_appended']} + dropped "
                  f"{report['rows_dropped']} (email {r['email']}, user id {r['user_id']}, "
                  f"linked device {r['linked_device']})",
                  f"- Written: `{report['output']['path']}`" if report["output"] else "- Written: no file "
                  "(no row survived)",
                  f"- Verification: {report['verification']['matches_found']} matches in the written file: "
                  f"**{'PASSED' if report['verification']['ok'] else 'FAILED'}**"]
    lines += ["", *raw_markdown(report["raw_copies"]), "", *chain.integrity_markdown(report)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The steps, run in order by `pipelines.operations.targeted.ingest_batch` (directly, or as tasks of `flows/ingest.py`).


@dataclass(frozen=True)
class IngestJob:
    """One batch bound for one dataset, with what it is checked against."""

    config: DatasetConfig
    current: DatasetPlan
    context: tuple[DatasetPlan, ...]
    batch: Batch
    relpath: str
    duplicate: dict[str, Any] | None
    """The earlier ingest of the same bytes, or None."""


def extract_batch(settings: Settings, target: DatasetConfig, path: Path, run_id: str,
                  tmp_dir: Path) -> IngestJob:
    """Plan the target dataset and the profiles datasets (device links), read and check the batch."""
    plans = {c.name: plan_current(settings, c) for c in settings.datasets if c == target or c.kind == "profiles"}
    current = plans[target.name]
    batch = load_batch(Path(path), target, dataset_schema(current), tmp_dir)
    return IngestJob(target, current, tuple(plans.values()), batch, batch_relpath(run_id, batch),
                     duplicate_of(current.previous_manifest, batch))


def match_batch(con: duckdb.DuckDBPyConnection, entries: pa.Table, job: IngestJob, link_through_events: bool,
                remembered: pa.Table | None = None) -> tuple[MatchResult, IngestStats]:
    """§3 on the batch. `remembered`: the device links kept from earlier runs (pipelines/core/links.py), so
    a batch's events from a device whose linking rows are long gone are dropped too."""
    match = find_matches(con, entries, guard_inputs(job.config, job.relpath, job.batch, job.context),
                         link_through_events, extra_linked=remembered)
    return match, batch_stats(job.batch, match.datasets[job.config.name])


def write_batch(job: IngestJob, match: MatchResult, stats: IngestStats, run_id: str, blacklist_version: int,
                at: str) -> DatasetOutcome:
    """A complete new version: the current files (hard links) plus the batch minus its matches, and
    the manifest remembering the batch. Files carried over keep their verification state."""
    matches = match.datasets[job.config.name]
    outcome = write_version(ingest_plan(job.current, job.relpath, job.batch, stats),
                            version_matches(matches, job.relpath, stats), run_id, blacklist_version)
    record = batch_record(job.batch, stats, run_id, at, job.relpath if stats.rows_appended else None)
    previous = job.current.previous_manifest
    restore_manifest(outcome.version, previous, {"blacklist_version": int(previous.get("blacklist_version", 0)),
                                                 BATCHES_KEY: {job.batch.sha256: record}})
    return outcome


def verify_written_batch(con: duckdb.DuckDBPyConnection, entries: pa.Table, job: IngestJob, outcome: DatasetOutcome,
                         stats: IngestStats, match: MatchResult, link_through_events: bool) -> int:
    """Re-read the written batch file; SweepError (nothing published) if it still holds matches."""
    found = verify_batch(con, entries, job.config, job.relpath, outcome.version / job.relpath, stats, match,
                         link_through_events)
    if found:
        storage.remove_stale_versions(job.config.path)
        raise SweepError(f"verification found {found} blacklisted rows in the written batch file; "
                         "nothing was published")
    return found


def delete_batch(job: IngestJob, delete: bool) -> list[str]:
    """Delete the consumed batch file (a raw copy) when asked; return what was deleted."""
    if not delete:
        return []
    job.batch.source.unlink()
    return [str(job.batch.source)]


def write_ingest_report(report_dir: Path, run: IngestRun, job: IngestJob, stats: IngestStats | None,
                        outcome: DatasetOutcome | None, matches_found: int,
                        deleted: Sequence[str]) -> tuple[Path, dict[str, Any]]:
    """Write `<report_dir>/_operations/<run_id>/ingest.json` and `.md`; return the JSON path and the report."""
    output = None
    if outcome is not None and stats is not None and stats.rows_appended:
        f = next(f for f in outcome.files if f.relpath == job.relpath)
        output = {"path": job.relpath, "rows": f.rows_out, "sha256": f.sha256_out}
    dropped = stats.rows_dropped if stats else (job.duplicate or {}).get("rows_dropped")
    held = [] if deleted else [RawFile(job.config.name, str(job.batch.source), job.batch.rows, dropped,
                                       None if dropped is not None else "no record of the earlier ingest")]
    report = build_ingest_report(run, job.config, job.batch, stats, job.duplicate, output, matches_found,
                                 deleted, held)
    written = chain.write_linked(report_dir, report, lambda r: {"ingest.md": render_ingest_markdown(r)},
                                 f"{OPERATIONS_DIR}/{run.run_id}/ingest.json")
    report_index.refresh(report_dir)  # index.html (an ingest erases nothing stored: no notices)
    return written


def ingest_summary(path: Path, report: dict[str, Any]) -> dict[str, Any]:
    """What an ingest answers (CLI, flow result): ids, counts and paths, never an email."""
    return {"run_id": report["run"]["run_id"], "dataset": report["dataset"]["name"],
            "duplicate": report["duplicate"], "rows_in": report["rows_in"],
            "rows_appended": report["rows_appended"], "rows_dropped": report["rows_dropped"],
            "file": report["output"]["path"] if report["output"] else None,
            "raw_deleted": report["raw_copies"]["deleted"], "report": str(path)}
