"""Delta Lake tables as a dataset format (`format = "delta"`, docs/decisions/0009-scaleout-dask-s3-delta.md).

The same §3 matching decides which rows go (DuckDB reads the table's active Parquet files); the table's
own transaction then removes them, so every Delta reader stays consistent:

1. `plan_table`: the active files of the current table version, as a DatasetPlan the matcher takes.
2. `purge_table`: a `MERGE ... WHEN MATCHED DELETE` keyed on the identity values of the matched rows
   (§3 decides on those values only, so equal keys mean equal decisions). The commit is Delta's own
   atomic switch. The keys travel in the merge *source*, never in the predicate text, so the commit
   log does not record them. The merge's deleted-row count must equal the matcher's, else the table
   is restored to the version before and the run fails.
3. `finish_purge` (after verification): vacuum with zero retention and a full listing, so purged rows
   are physically gone; write a checkpoint and delete every log file older than it, because the JSON
   commits keep per-file min/max statistics that include emails (docs/environment.md); then search the log for the
   blacklisted emails and fail if any survives.

Time travel to versions before the purge is gone afterwards: that is the point of the purge.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from pipelines.config.settings import DatasetConfig
from pipelines.core import sql
from pipelines.core.errors import ConfigError, DataFileError, SchemaError, SweepError
from pipelines.core.match import leaf_type, resolve_column
from pipelines.core.model import DatasetMatches, DatasetOutcome, DatasetPlan, FileOutcome, FilePlan
from pipelines.datasets import objectstore
from pipelines.datasets.objectstore import Url

LOG_DIR = "_delta_log"
_UNSUPPORTED_FEATURES = {"columnMapping"}
# deltalake (delta-rs) can neither read nor write deletion vectors (delta-io/delta-rs#1094): a table with
# the feature is swept while no active file carries one (deltalake's own deletes rewrite files); one that
# does is refused with the command that rewrites them.
_DV_FIX = ("deltalake, which gdpr-sweep uses, cannot read or rewrite them; rewrite them with Spark (Delta Lake "
           "2.4 or later) or Databricks: REORG TABLE delta.`{location}` APPLY (PURGE); then run the sweep again "
           "(it vacuums the old files). To stop new ones: ALTER TABLE ... SET TBLPROPERTIES "
           "('delta.enableDeletionVectors' = false)")
_LOG_VERSION = re.compile(r"^(\d{20})\.")

# The identity values of the rows the matcher chose in one file; the merge source (one statement,
# named here beside the code that binds it; identifiers go through sql.column_ref).
DELETE_KEYS = """
    SELECT DISTINCT {columns}
    FROM read_parquet($file) AS t
    WHERE t.file_row_number IN (SELECT row FROM drop_rows)
"""


@dataclass(frozen=True)
class DeltaOutcome(DatasetOutcome):
    """A purged Delta table. `files` are the input files (rows kept from each); `outputs` the table's
    active files after the purge, which verification re-reads."""

    table_version_before: int = -1
    table_version_after: int = -1
    outputs: tuple[FileOutcome, ...] = ()

    def verifiable(self) -> DatasetOutcome:
        """The table's active files after the purge, as an outcome with nothing removed."""
        return DatasetOutcome(self.name, self.kind, self.version, self.outputs, {}, {})


@dataclass(frozen=True)
class DeltaCleanup:
    vacuumed_files: int
    log_files_deleted: int
    checkpoint_version: int | None


def _fs(config: DatasetConfig, fs: fsspec.AbstractFileSystem | None) -> fsspec.AbstractFileSystem:
    return fs if fs is not None else fsspec.filesystem("file")


def _strip(uri: str) -> str:
    return uri.split("://", 1)[1] if "://" in uri else uri


def open_table(config: DatasetConfig, storage_options: dict[str, str] | None = None,
               version: int | None = None) -> DeltaTable:
    """The Delta table of a dataset, or an error naming the dataset and what to fix."""
    try:
        table = DeltaTable(config.location, version=version, storage_options=storage_options)
    except TableNotFoundError:
        raise ConfigError(f"dataset {config.name!r}: no Delta table at {config.location} "
                          "(expected a _delta_log folder); check 'path' and 'format'") from None
    features = set(table.protocol().reader_features or ())
    if features & _UNSUPPORTED_FEATURES:
        raise ConfigError(f"dataset {config.name!r}: Delta reader features {sorted(features & _UNSUPPORTED_FEATURES)} "
                          "are not supported; rewrite the table without them")
    partitions = set(table.metadata().partition_columns)
    for role, column in config.identity_columns.items():
        if column.split(".")[0] in partitions:
            raise SchemaError(f"dataset {config.name!r}: identity column {column!r} ({role}) is a partition "
                              "column of the Delta table; purging by partition is not supported")
    return table


def refuse_deletion_vectors(config: DatasetConfig, table: DeltaTable, fs: fsspec.AbstractFileSystem) -> None:
    if "deletionVectors" not in set(table.protocol().reader_features or ()):
        return
    marked = files_with_deletion_vectors(config, table, fs)
    if marked:
        raise ConfigError(f"dataset {config.name!r}: {len(marked)} active file(s) of the Delta table carry "
                          "deletion vectors (rows deleted only logically, still in the files): "
                          + _DV_FIX.format(location=config.location))


def files_with_deletion_vectors(config: DatasetConfig, table: DeltaTable, fs: fsspec.AbstractFileSystem) -> list[str]:
    """Active files that an `add` action of the retained log (JSON commits, Parquet checkpoints) gave a
    deletion vector. A file's vector only ever grows until the file is rewritten under a new name, so
    an active path once added with one still has one."""
    marked: set[str] = set()
    fs.invalidate_cache(_log_dir(config))
    for path in fs.find(_log_dir(config)):
        name = path.rsplit("/", 1)[-1]
        if _LOG_VERSION.match(name) and name.endswith(".json"):
            for line in fs.cat_file(path).splitlines():
                add = json.loads(line).get("add") if line.strip() else None
                if add and add.get("deletionVector"):
                    marked.add(unquote(add["path"]))
        elif _LOG_VERSION.match(name) and name.endswith(".parquet"):
            adds = pq.read_table(pa.BufferReader(fs.cat_file(path)), columns=["add"]).column("add").to_pylist()
            marked |= {unquote(a["path"]) for a in adds if a and a.get("deletionVector")}
    return sorted(marked & set(_active_files(table)))


def _active_files(table: DeltaTable) -> dict[str, tuple[str, int | None]]:
    """Relative path -> (absolute URI, row count from the log or None)."""
    actions = pa.table(table.get_add_actions(flatten=True))
    counts = dict(zip(actions.column("path").to_pylist(),
                      actions.column("num_records").to_pylist() if "num_records" in actions.column_names
                      else [None] * actions.num_rows, strict=True))
    root = table.table_uri.rstrip("/").removeprefix("file://")
    out = {}
    for uri in table.file_uris():
        rel = uri[len(root) + 1:] if uri.startswith(root + "/") else uri
        out[rel] = (uri, counts.get(rel))
    return dict(sorted(out.items()))


def _num_rows(uri: str, fs: fsspec.AbstractFileSystem) -> int:
    try:
        with fs.open(_strip(uri), "rb") as fh:
            return int(pq.ParquetFile(fh).metadata.num_rows)
    except (OSError, pa.ArrowException) as exc:
        raise DataFileError(f"{uri}: not a readable Parquet file ({type(exc).__name__})") from None


def _local(uri: str) -> Any:
    """What the matcher reads: a local Path for local tables (it stats them), an object URL otherwise."""
    return Path(uri) if "://" not in uri else Url(uri)


def plan_table(config: DatasetConfig, storage_options: dict[str, str] | None = None,
               fs: fsspec.AbstractFileSystem | None = None) -> DatasetPlan:
    """The table's current active files, each with its row count, for the matcher."""
    table = open_table(config, storage_options)
    fs = _fs(config, fs)
    refuse_deletion_vectors(config, table, fs)
    files = []
    for rel, (uri, rows) in _active_files(table).items():
        files.append(FilePlan(rel, _local(uri), "clean", rows if rows is not None else _num_rows(uri, fs), None))
    return DatasetPlan(config, tuple(files), None, {"delta_version": table.version()}, table_schema=True)


def _datafusion_ref(segments: Sequence[tuple[str, bool]], alias: str = "t") -> str:
    """A (nested) column in the merge predicate's SQL dialect: `t."User"['Email']`."""
    ref = f"{alias}.{sql.quote_ident(segments[0][0])}"
    for name, _in_map in segments[1:]:
        ref += f"[{sql.quote_literal(name)}]"
    return ref


def _key_roles(config: DatasetConfig) -> list[str]:
    """The columns §3 decides on for this dataset: a profile's own device list does not decide its fate."""
    roles = ["email", "user_id", "scope", "device_id", "device_ids"]
    if config.kind == "profiles":
        roles.remove("device_ids")
    return [r for r in roles if r in config.identity_columns]


def delete_keys(con: duckdb.DuckDBPyConnection, plan: DatasetPlan, matches: DatasetMatches,
                schema: pa.Schema) -> tuple[pa.Table, str]:
    """The distinct identity tuples of the rows to remove, typed as the table's columns, and the merge
    predicate that matches a target row carrying one of them (NULL equals NULL)."""
    config = plan.config
    roles = _key_roles(config)
    where = f"dataset {config.name!r}"
    segments = {r: resolve_column(schema, config.identity_columns[r], where) for r in roles}
    columns = ", ".join(f"{sql.column_ref(segments[r])} AS k{i}" for i, r in enumerate(roles))
    by_rel = {f.relpath: f for f in plan.files}
    parts = []
    for rel, rows in matches.drops.items():
        if not len(rows):
            continue
        con.register("drop_rows", pa.table({"row": pa.array(np.asarray(rows, dtype=np.int64))}))
        try:
            parts.append(con.sql(DELETE_KEYS.format(columns=columns),
                                 params={"file": str(by_rel[rel].input_path)}).to_arrow_table())
        finally:
            con.unregister("drop_rows")
    types = pa.schema([(f"k{i}", leaf_type(schema, segments[r])) for i, r in enumerate(roles)])
    keys = pa.concat_tables([p.cast(types) for p in parts]) if parts else types.empty_table()
    keys = _distinct(keys)
    predicate = " AND ".join(f"({_datafusion_ref(segments[r])} IS NOT DISTINCT FROM s.k{i})"
                             for i, r in enumerate(roles))
    return keys, predicate


def _distinct(table: pa.Table) -> pa.Table:
    seen: dict[tuple[Any, ...], int] = {}
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    for i, row in enumerate(zip(*columns, strict=True)):
        seen.setdefault(tuple(tuple(v) if isinstance(v, list) else v for v in row), i)
    return table.take(pa.array(sorted(seen.values()), type=pa.int64()))


def purge_table(con: duckdb.DuckDBPyConnection, plan: DatasetPlan, matches: DatasetMatches, run_id: str,
                blacklist_version: int, storage_options: dict[str, str] | None = None,
                fs: fsspec.AbstractFileSystem | None = None) -> DeltaOutcome:
    """Delete the matched rows with the table's own merge; one atomic Delta commit (none if nothing matched)."""
    config = plan.config
    fs = _fs(config, fs)
    table = open_table(config, storage_options)
    before = table.version()
    if before != plan.previous_manifest.get("delta_version"):
        raise SweepError(f"dataset {config.name!r}: the Delta table changed during the run "
                         f"(version {plan.previous_manifest.get('delta_version')} -> {before}); run again")
    removed = matches.rows_removed
    if removed:
        schema = pa.schema(table.schema().to_arrow())
        keys, predicate = delete_keys(con, plan, matches, schema)
        try:
            metrics = (table.merge(keys, predicate, source_alias="s", target_alias="t")
                       .when_matched_delete().execute())
        except DeltaError as exc:
            raise SweepError(f"dataset {config.name!r}: Delta merge-delete failed ({type(exc).__name__}); "
                             "the table is unchanged") from None
        deleted = int(metrics["num_target_rows_deleted"])
        if deleted != removed:
            table.restore(before)
            raise SweepError(f"dataset {config.name!r}: the Delta delete removed {deleted} rows, the matcher "
                             f"chose {removed}; restored table version {before}, nothing purged")
        table = open_table(config, storage_options)
    after_files = _active_files(table)
    file_outcomes = []
    for f in plan.files:
        dropped = len(matches.drops.get(f.relpath, ()))
        sha_in = _sha256(f.input_path, fs)
        kept = f.relpath in after_files
        file_outcomes.append(FileOutcome(f.relpath, f.origin, f.rows, f.rows - dropped, sha_in,
                                         sha_in if kept else "", rewritten=not kept))
    previous = {f.relpath for f in plan.files}
    outputs = []
    for rel, (uri, rows) in after_files.items():
        sha = _sha256(_local(uri), fs)
        n = rows if rows is not None else _num_rows(uri, fs)
        outputs.append(FileOutcome(rel, "clean" if rel in previous else "delta", n, n, sha, sha,
                                   rewritten=rel not in previous))
    return DeltaOutcome(config.name, config.kind, _local(config.location), tuple(file_outcomes),
                        dict(matches.by_reason), dict(matches.by_entry),
                        table_version_before=before, table_version_after=table.version(), outputs=tuple(outputs))


def _sha256(path: Any, fs: fsspec.AbstractFileSystem) -> str:
    digest = hashlib.sha256()
    with fs.open(_strip(str(path)), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verifiable(outcome: DatasetOutcome) -> DatasetOutcome:
    """What verification re-reads: for a Delta table its active files after the purge."""
    return outcome.verifiable()


def finish_purge(config: DatasetConfig, outcome: DeltaOutcome, emails: Iterable[str],
                 storage_options: dict[str, str] | None = None,
                 fs: fsspec.AbstractFileSystem | None = None) -> DeltaCleanup:
    """Vacuum, checkpoint, delete the log before the checkpoint, then prove no email is left in the log.

    `emails` are those of entries without a scope: they must be gone from every file. A scoped entry's
    email may rightly survive in rows (and statistics) of other scopes."""
    fs = _fs(config, fs)
    needles = sorted({e.lower() for e in emails if e})
    table = open_table(config, storage_options)
    if not outcome.rows_removed and not _unreferenced(config, table, fs) and not log_leaks(config, needles, fs):
        return DeltaCleanup(0, 0, None)  # a crash after the merge left files to vacuum: then go on
    vacuumed = table.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False, full=True)
    table = open_table(config, storage_options)
    table.create_checkpoint()
    checkpoint = table.version()
    deleted = _delete_log_before(config, checkpoint, fs)
    if config.url:  # a versioned bucket keeps what vacuum and the log clean-up deleted as old versions
        objectstore.delete_versions(fs, Url(config.url).bucket, objectstore.noncurrent(fs, config.url))
    leaks = log_leaks(config, needles, fs)
    if leaks:
        raise SweepError(f"dataset {config.name!r}: {len(leaks)} Delta log file(s) still hold a blacklisted "
                         f"email after clean-up: {leaks}; remove them or rewrite the table")
    return DeltaCleanup(len(vacuumed), deleted, checkpoint)


def _unreferenced(config: DatasetConfig, table: DeltaTable, fs: fsspec.AbstractFileSystem) -> list[str]:
    """Data files under the table folder that the current version does not reference (left by a run
    that stopped between its merge and its vacuum, or by another writer): vacuum's work."""
    root = _strip(config.location).rstrip("/")
    fs.invalidate_cache(root)
    active = set(_active_files(table))
    present = [p[len(root) + 1:] for p in fs.find(root)]
    return [p for p in present if not p.startswith(LOG_DIR + "/") and p not in active]


def _log_dir(config: DatasetConfig) -> str:
    return f"{_strip(config.location).rstrip('/')}/{LOG_DIR}"


def _delete_log_before(config: DatasetConfig, checkpoint: int, fs: fsspec.AbstractFileSystem) -> int:
    """Delete commits, checkpoints and checksums older than `checkpoint` (readers start at the checkpoint)."""
    deleted = 0
    fs.invalidate_cache(_log_dir(config))  # s3fs keeps listings: another writer's commits are not in them
    for path in sorted(fs.ls(_log_dir(config), detail=False)):
        match = _LOG_VERSION.match(path.rsplit("/", 1)[-1])
        if match and int(match.group(1)) < checkpoint:
            fs.rm(path)
            deleted += 1
    return deleted


def log_leaks(config: DatasetConfig, needles: Sequence[str], fs: fsspec.AbstractFileSystem | None = None) -> list[str]:
    """Log files that contain any of `needles` (lower-cased emails), in their bytes or, for Parquet
    checkpoints, in their decoded values. Returns file names only, never the matched value."""
    fs = _fs(config, fs)
    if not needles:
        return []
    found = []
    fs.invalidate_cache(_log_dir(config))
    for path in sorted(fs.find(_log_dir(config))):
        with fs.open(path, "rb") as fh:
            data = fh.read()
        texts = [data.decode("utf-8", "replace").lower()]
        if path.endswith(".parquet"):
            texts.append(_parquet_text(data).lower())
        if any(n in t for t in texts for n in needles):
            found.append(path.rsplit("/", 1)[-1])
    return found


def _parquet_text(data: bytes) -> str:
    """Every value of a Parquet file as text (checkpoints compress, so bytes alone can hide a value)."""
    table = pq.read_table(pa.BufferReader(data))
    return "\n".join(str(v) for column in table.columns for v in column.to_pylist())
