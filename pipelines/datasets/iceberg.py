"""Iceberg tables as a dataset kind (`format = "iceberg"`, docs/decisions/0281-iceberg-tables.md).

Through pyiceberg 0.12, with any catalog it supports (default: its SQL catalog on a SQLite file):

1. `plan_table`: the data files of the table's current snapshot, as a DatasetPlan the §3 matcher
   (pipelines/match.py, the same code as every other kind) reads like any Parquet files.
2. `purge_table`: one copy-on-write commit of the table's own: every data file with rows to drop is
   read through pyiceberg, the matched rows are dropped **by position** (the matcher's row numbers)
   and the rest is written as new data files the way pyiceberg's own `Table.delete` writes them; one
   overwrite snapshot replaces the old files by the new ones. No delete files (the bytes would stay),
   no filter expression: nothing of the matched values reaches the snapshot summary or any metadata.
   The manifest entry that records a replaced file as deleted carries no column bounds (a bound may be
   a purged email); the live files' entries keep theirs.
3. `finish_purge` (after verification): expire every snapshot but the current one, delete every file
   under the table location that the current metadata no longer references (pyiceberg deletes none:
   old data files, manifests with column bounds, manifest lists, metadata JSON), then search the whole
   location, decoding what it reads, and fail on an unscoped entry's email.

Which files may be deleted (the orphan removal is ours; pyiceberg 0.12 has none):

- *garbage*: a file named by the table's history as this run read it (the current metadata, the
  metadata files in its metadata log, their snapshots' manifest lists, manifests, data and delete
  files, statistics files) and not referenced by the metadata that is current when the files are
  deleted. A concurrent writer's new files are named only by metadata newer than what we read, and a
  correct writer never brings back a file of an expired snapshot (its commit is rebased on the current
  snapshot), so garbage is never a file a newer commit needs. The current metadata is read again right
  before deleting; if it moved, the references are recomputed from the newer one.
- *unknown*: a file under the location that no metadata we read names. It may be a concurrent writer's
  file whose commit has not landed yet, so it is deleted only when older than `orphan_grace_hours`;
  younger ones are left and counted (the search below still fails the run if one holds an email).
- On a versioned bucket, every stored version of a deleted key is deleted too.

Time travel to snapshots before the purge is gone afterwards: that is the point of the purge. The
current metadata's metadata log still names the deleted metadata files (as after Iceberg's own
`write.metadata.delete-after-commit`); those versions can no longer be read.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config.iceberg import catalog_properties
from pipelines.config.settings import DatasetConfig, S3Settings
from pipelines.core.errors import ConfigError, DataFileError, SchemaError, SweepError
from pipelines.core.model import DatasetMatches, DatasetOutcome, DatasetPlan, FileOutcome, FilePlan
from pipelines.datasets.objectstore import Url

SNAPSHOT_RUN_ID = "gdpr-sweep.run-id"
"""Snapshot summary property naming the sweep run that made a purge commit (a run id, nothing personal)."""
_TRUNCATED_MIN = 16
"""Iceberg's default metrics mode `truncate(16)` keeps the first 16 characters of a string bound: a
bound at least this long that starts a needle is that needle's value, cut."""
_EMAIL_TOKEN = re.compile(r"[^\s<>()\[\]{},;:\"'`|\\/]+@[^\s<>()\[\]{},;:\"'`|\\/]+")


@dataclass(frozen=True)
class IcebergOutcome(DatasetOutcome):
    """A purged Iceberg table. `files` are the input data files (rows kept from each); `outputs` the
    data files of the snapshot after the purge, which verification re-reads."""

    snapshot_before: int | None = None
    snapshot_after: int | None = None
    outputs: tuple[FileOutcome, ...] = ()
    written: tuple[str, ...] = field(default=(), compare=False)
    """Locations of the data files this run wrote (relative to the table location)."""


@dataclass(frozen=True)
class IcebergCleanup:
    """What `finish_purge` did; counts and file names relative to the table location only."""

    snapshots_expired: int
    files_deleted: int
    unknown_kept: tuple[str, ...]
    """Unreferenced files younger than the grace period, left in place (a writer may be committing them)."""
    files_searched: int


# ---------------------------------------------------------------------------------------------
# Opening the table


def load_table(config: DatasetConfig, s3: S3Settings | None = None) -> Any:
    """The dataset's Iceberg table, loaded from its catalog; ConfigError naming the dataset otherwise."""
    from pyiceberg.catalog import load_catalog
    from pyiceberg.exceptions import NoSuchTableError

    assert config.iceberg is not None, "an Iceberg dataset has [datasets.iceberg]"
    settings = config.iceberg
    props = catalog_properties(settings, s3 if config.url else None)
    try:
        catalog = load_catalog(settings.catalog_name, **props)
        return catalog.load_table(settings.table)
    except NoSuchTableError:
        raise ConfigError(f"dataset {config.name!r}: no Iceberg table {settings.table!r} in catalog "
                          f"{settings.catalog_name!r}; check [datasets.iceberg] 'table' and the catalog") from None
    except (ValueError, OSError, ImportError) as exc:  # the message may quote a property value: not repeated
        raise ConfigError(f"dataset {config.name!r}: cannot open the Iceberg catalog {settings.catalog_name!r} "
                          f"({type(exc).__name__}); check [datasets.iceberg]") from None


def open_table(config: DatasetConfig, s3: S3Settings | None = None) -> Any:
    """The table, checked for what the purge supports: one branch (`main`), no delete files, identity
    columns not used by the partition spec, data files under the table location."""
    table = load_table(config, s3)
    where = f"dataset {config.name!r} (Iceberg table {config.iceberg.table!r})"  # type: ignore[union-attr]
    if not _same_location(_location(table), config.location):
        raise ConfigError(f"{where}: the catalog puts the table at {_location(table)}, 'path' says "
                          f"{config.location}; set 'path' to the table's location")
    others = sorted(name for name in table.metadata.refs if name != "main")
    if others:
        raise ConfigError(f"{where}: branches or tags {others} keep older snapshots (and the rows purged from "
                          "'main'); drop them (pyiceberg: table.manage_snapshots().remove_tag(...) / "
                          "remove_branch(...); Spark: ALTER TABLE ... DROP TAG/BRANCH) before sweeping")
    schema = table.schema()
    for spec in table.metadata.partition_specs:
        for pf in spec.fields:
            source = schema.find_column_name(pf.source_id) or ""
            for role, column in config.identity_columns.items():
                if source == column:
                    raise SchemaError(f"{where}: identity column {column!r} ({role}) is a partition source "
                                      "column; purging by partition is not supported (partition summaries in "
                                      "manifest lists would keep the values)")
    return table


def _location(table: Any) -> str:
    return str(table.location()).rstrip("/")


def _same_location(table_location: str, configured: str) -> bool:
    a, b = _strip(table_location).rstrip("/"), _strip(configured).rstrip("/")
    if "://" in configured:
        return a == b
    return os.path.realpath(a) == os.path.realpath(b)


def _strip(uri: str) -> str:
    """What fsspec names a file by: a local path, or `bucket/key` for an object URL."""
    for scheme in ("file://", "s3a://", "s3n://", "s3://"):
        if uri.startswith(scheme):
            return uri[len(scheme):]
    return uri


def _reader_path(uri: str) -> Any:
    """What the matcher reads: a local Path (it stats it) or an object URL (DuckDB reads it through s3fs)."""
    if uri.startswith("file://") or "://" not in uri:
        return Path(_strip(uri))
    return Url("s3://" + _strip(uri))


def _relpath(table: Any, uri: str, config: DatasetConfig) -> str:
    root = _strip(_location(table))
    path = _strip(uri)
    if not path.startswith(root + "/"):
        raise ConfigError(f"dataset {config.name!r}: data file {uri} lies outside the table location "
                          f"{_location(table)}; the purge cleans and searches the table location only")
    return path[len(root) + 1:]


def _current_data_files(table: Any) -> dict[str, Any]:
    """Path -> DataFile of every live file of the current snapshot; SweepError on delete files."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return {}
    from pyiceberg.manifest import DataFileContent, ManifestContent

    files: dict[str, Any] = {}
    for manifest in snapshot.manifests(table.io):
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            if manifest.content != ManifestContent.DATA or entry.data_file.content != DataFileContent.DATA:
                raise ConfigError(f"Iceberg table {table.name()!r}: its current snapshot has delete files "
                                  "(merge-on-read); rewrite them into the data files first (Spark: CALL "
                                  "catalog.system.rewrite_data_files(table => '...', options => "
                                  "map('delete-file-threshold', '1'))), then sweep")
            files[entry.data_file.file_path] = entry.data_file
    return dict(sorted(files.items()))


# ---------------------------------------------------------------------------------------------
# Extract


def plan_table(config: DatasetConfig, s3: S3Settings | None = None) -> DatasetPlan:
    """The current snapshot's data files, with the row counts the manifests record."""
    table = open_table(config, s3)
    files = [FilePlan(_relpath(table, path, config), _reader_path(path), "clean", int(df.record_count), None)
             for path, df in _current_data_files(table).items()]
    snapshot = table.current_snapshot()
    return DatasetPlan(config, tuple(files), None,
                       {"iceberg_snapshot": snapshot.snapshot_id if snapshot is not None else None,
                        "iceberg_metadata": table.metadata_location})


# ---------------------------------------------------------------------------------------------
# Purge: one copy-on-write commit keyed on row positions


def _overwrite_class() -> type:
    """pyiceberg's overwrite producer, except that the manifest entries recording replaced files as
    deleted carry no column bounds (they would keep a purged email in the current snapshot's manifests)."""
    from pyiceberg.manifest import DataFile, ManifestEntry
    from pyiceberg.table.update.snapshot import _OverwriteFiles

    class _PurgeOverwrite(_OverwriteFiles):  # type: ignore[misc]
        def _deleted_entries(self) -> list[Any]:
            return [ManifestEntry.from_args(status=e.status, snapshot_id=e.snapshot_id,
                                            sequence_number=e.sequence_number,
                                            file_sequence_number=e.file_sequence_number,
                                            data_file=_without_bounds(e.data_file, DataFile))
                    for e in super()._deleted_entries()]

    return _PurgeOverwrite


_LOWER_BOUNDS, _UPPER_BOUNDS = 10, 11  # positions in pyiceberg 0.12's DataFile record (checked in tests)


def _without_bounds(data_file: Any, cls: type) -> Any:
    copy = cls(*data_file._data)
    copy.spec_id = data_file.spec_id
    copy[_LOWER_BOUNDS] = None
    copy[_UPPER_BOUNDS] = None
    return copy


def _kept_rows(table: Any, data_file: Any, drop: np.ndarray, expected_rows: int, where: str) -> pa.Table:
    """The file's rows in the table's current schema, without the rows at positions `drop`."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan
    from pyiceberg.table import FileScanTask

    whole = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()).to_table([FileScanTask(data_file)])
    if whole.num_rows != expected_rows:
        raise SweepError(f"{where}: {whole.num_rows} rows read, {expected_rows} planned; run again")
    keep = np.ones(whole.num_rows, dtype=bool)
    keep[np.asarray(drop, dtype=np.int64)] = False
    return whole.filter(pa.array(keep))


def purge_table(plan: DatasetPlan, matches: DatasetMatches, run_id: str, s3: S3Settings | None = None,
                fs: fsspec.AbstractFileSystem | None = None) -> IcebergOutcome:
    """Remove the matched rows in one overwrite commit (none when nothing matched)."""
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.io.pyarrow import _dataframe_to_data_files
    from pyiceberg.table.snapshots import Operation

    config = plan.config
    fs = fs if fs is not None else fsspec.filesystem("file")
    table = open_table(config, s3)
    before = table.current_snapshot()
    before_id = before.snapshot_id if before is not None else None
    if before_id != plan.previous_manifest.get("iceberg_snapshot"):
        raise SweepError(f"dataset {config.name!r}: the Iceberg table changed during the run (snapshot "
                         f"{plan.previous_manifest.get('iceberg_snapshot')} -> {before_id}); run again")
    by_rel = {f.relpath: f for f in plan.files}
    live = {_relpath(table, path, config): df for path, df in _current_data_files(table).items()}
    written: list[Any] = []
    if matches.rows_removed:
        commit_uuid = uuid.uuid4()
        counter = itertools.count(0)
        producer_cls = _overwrite_class()
        try:
            replaced = []
            for rel, rows in sorted(matches.drops.items()):
                if not len(rows):
                    continue
                kept = _kept_rows(table, live[rel], rows, by_rel[rel].rows, f"dataset {config.name!r}, file {rel}")
                new = list(_dataframe_to_data_files(table_metadata=table.metadata, df=kept, io=table.io,
                                                    write_uuid=commit_uuid, counter=counter)) if kept.num_rows else []
                written += new
                replaced.append((live[rel], new))
            operation = Operation.OVERWRITE if written else Operation.DELETE
            with table.transaction() as tx:
                producer = producer_cls(operation=operation, transaction=tx, io=table.io, commit_uuid=commit_uuid,
                                        snapshot_properties={SNAPSHOT_RUN_ID: run_id})
                for old, new in replaced:
                    producer.delete_data_file(old)
                    for df in new:
                        producer.append_data_file(df)
                producer.commit()
        except CommitFailedException:
            _delete_quietly(fs, [df.file_path for df in written])
            raise SweepError(f"dataset {config.name!r}: the Iceberg commit failed (a concurrent change to the "
                             "table); nothing was purged, run again") from None
        except BaseException:
            _delete_quietly(fs, [df.file_path for df in written])
            raise
        table = open_table(config, s3)
        fs.invalidate_cache()  # s3fs caches listings; pyiceberg wrote through its own FileIO
    after = table.current_snapshot()
    after_files = {_relpath(table, path, config): df for path, df in _current_data_files(table).items()}
    file_outcomes = []
    for f in plan.files:
        dropped = len(matches.drops.get(f.relpath, ()))
        kept = f.relpath in after_files
        sha_in = _sha256(fs, str(f.input_path))
        file_outcomes.append(FileOutcome(f.relpath, f.origin, f.rows, f.rows - dropped, sha_in,
                                         sha_in if kept else "", rewritten=not kept))
    outputs = []
    new_rel = {_relpath(table, df.file_path, config) for df in written}
    known = {o.relpath: o.sha256_out for o in file_outcomes if o.sha256_out}
    for rel, df in after_files.items():
        n = int(df.record_count)
        sha = known.get(rel) or _sha256(fs, df.file_path)
        outputs.append(FileOutcome(rel, "clean" if rel in by_rel else "iceberg", n, n, sha, sha,
                                   rewritten=rel in new_rel))
    outcome = IcebergOutcome(config.name, config.kind, _reader_path(_location(table)), tuple(file_outcomes),
                             dict(matches.by_reason), dict(matches.by_entry),
                             snapshot_before=before_id, snapshot_after=after.snapshot_id if after else None,
                             outputs=tuple(outputs), written=tuple(sorted(new_rel)))
    rows_after = sum(o.rows_out for o in outputs if o.relpath in by_rel or o.rewritten)
    if matches.rows_removed and rows_after != outcome.rows_out:
        raise SweepError(f"dataset {config.name!r}: the table holds {rows_after} rows after the purge, "
                         f"{outcome.rows_out} expected (a concurrent append?); run again")
    return outcome


def _sha256(fs: fsspec.AbstractFileSystem, uri: str) -> str:
    digest = hashlib.sha256()
    try:
        with fs.open(_strip(uri), "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise DataFileError(f"{uri}: cannot be read ({type(exc).__name__})") from None
    return digest.hexdigest()


def _delete_quietly(fs: fsspec.AbstractFileSystem, uris: Iterable[str]) -> None:
    for uri in uris:
        try:
            fs.rm(_strip(uri))
        except OSError:
            pass  # left for the next run's orphan removal (it holds only kept rows)


def verifiable(outcome: DatasetOutcome) -> DatasetOutcome:
    """What verification re-reads: the table's data files after the purge."""
    if not isinstance(outcome, IcebergOutcome):
        return outcome
    return DatasetOutcome(outcome.name, outcome.kind, outcome.version, outcome.outputs, {}, {})


# ---------------------------------------------------------------------------------------------
# Finish: expire snapshots, delete unreferenced files, search the location


def _avro_records(fs: fsspec.AbstractFileSystem, uri: str) -> list[Any]:
    from pyiceberg.avro.file import AvroFile
    from pyiceberg.io import InputFile, InputStream

    class _Input(InputFile):  # pyiceberg's Avro reader over an fsspec file
        def __len__(self) -> int:
            return int(fs.size(_strip(uri)))

        def exists(self) -> bool:
            return bool(fs.exists(_strip(uri)))

        def open(self, seekable: bool = True) -> InputStream:
            return fs.open(_strip(uri), "rb")  # type: ignore[no-any-return]

    with AvroFile(_Input(uri)) as reader:  # type: ignore[var-annotated]
        return list(reader)


def _metadata(io: Any, uri: str) -> Any | None:
    from pyiceberg.serializers import FromInputFile

    try:
        return FromInputFile.table_metadata(io.new_input(uri))
    except FileNotFoundError:
        return None


def referenced(io: Any, metadata_uri: str, named: bool = False) -> set[str]:
    """Every file one metadata file makes a reader open (as fsspec paths): itself, statistics files, its
    snapshots' manifest lists, their manifests, and the data and delete files those list as live
    (added or existing; a `deleted` entry records a file its snapshot no longer reads). `named`: also
    the files of `deleted` entries (every file the metadata names). Files already gone are skipped."""
    meta = _metadata(io, metadata_uri)
    if meta is None:
        return set()
    found = {_strip(metadata_uri)}
    found |= {_strip(s.statistics_path) for s in [*meta.statistics, *meta.partition_statistics]}
    seen: set[str] = set()
    for snapshot in meta.snapshots:
        if snapshot.manifest_list:
            found.add(_strip(snapshot.manifest_list))
        try:
            manifests = snapshot.manifests(io)
        except FileNotFoundError:
            continue
        for manifest in manifests:
            path = manifest.manifest_path
            found.add(_strip(path))
            if path in seen:
                continue
            seen.add(path)
            try:
                entries = manifest.fetch_manifest_entry(io, discard_deleted=not named)
            except FileNotFoundError:
                continue
            found |= {_strip(e.data_file.file_path) for e in entries}
    return found


def _history(io: Any, metadata_uri: str) -> set[str]:
    """Files named by the current metadata and by every metadata file its log lists (still on disk)."""
    meta = _metadata(io, metadata_uri)
    named: set[str] = set()
    for uri in [*(e.metadata_file for e in (meta.metadata_log if meta else [])), metadata_uri]:
        named |= referenced(io, uri, named=True)
    return named


def finish_purge(config: DatasetConfig, outcome: DatasetOutcome, emails: Iterable[str],
                 s3: S3Settings | None = None, fs: fsspec.AbstractFileSystem | None = None,
                 now: float | None = None) -> IcebergCleanup:
    """Expire older snapshots, delete the files no longer referenced, then prove no unscoped entry's
    email is left anywhere under the table location.

    Clean-up runs when this run removed rows, when an earlier purge's clean-up is unfinished, or when
    a file the current metadata does not reference holds an email. Otherwise (a quiet night) nothing
    is committed or deleted, and the search skips the live data files (verification re-read them).

    `emails`: those of entries without a scope; they must be gone from every file. A scoped entry's
    email may rightly survive in rows (and bounds) of other scopes."""
    fs = fs if fs is not None else fsspec.filesystem("file")
    needles = Needles(emails)
    table = open_table(config, s3)
    location = _strip(_location(table))
    expired = deleted = 0
    unknown_kept: list[str] = []
    live = frozenset(p for p in referenced(table.io, table.metadata_location) if p.endswith(".parquet"))
    clean_up = bool(outcome.rows_removed) or _purged_lineage(table, fs)
    if not clean_up and search(fs, location, needles, skip=live | _metadata_files(fs, location)):
        clean_up = True  # an unreferenced file holds an email: delete it if it may be
    if clean_up:
        named = _history(table.io, table.metadata_location)
        current = table.current_snapshot()
        old = [s.snapshot_id for s in table.metadata.snapshots if current is None or s.snapshot_id != current.snapshot_id]
        if old:
            table.maintenance.expire_snapshots().by_ids(old).commit()
            expired = len(old)
        deleted, unknown_kept = _delete_unreferenced(config, fs, named, location, now, s3)
    leaks = search(fs, location, needles, skip=frozenset() if clean_up else live)
    if leaks:
        young = set(leaks) & set(unknown_kept)
        raise SweepError(f"dataset {config.name!r}: {len(leaks)} file(s) under the Iceberg table location still "
                         f"hold a blacklisted email after clean-up: {leaks}; "
                         + (f"{sorted(young)} are files no metadata references, younger than orphan_grace_hours "
                            "(a writer may still commit them): delete them or run again once they are older"
                            if young else "remove the rows with the table's own engine and run again"))
    return IcebergCleanup(expired, deleted, tuple(unknown_kept), len(_listing(fs, location)))


def _metadata_files(fs: fsspec.AbstractFileSystem, location: str) -> frozenset[str]:
    """Everything but Parquet files under the location (searched anyway by the final search)."""
    return frozenset(p for p in _listing(fs, location) if not p.endswith(".parquet"))


def _purged_lineage(table: Any, fs: fsspec.AbstractFileSystem) -> bool:
    """An earlier purge's clean-up is unfinished: snapshots, or metadata files still on disk, older than
    the newest snapshot a sweep run made (a crash between the purge commit and the clean-up)."""
    ours = [s for s in table.metadata.snapshots if s.summary is not None and s.summary[SNAPSHOT_RUN_ID]]
    if not ours:
        return False
    newest = max(s.timestamp_ms for s in ours)
    return (any(s.timestamp_ms < newest for s in table.metadata.snapshots)
            or any(e.timestamp_ms < newest and fs.exists(_strip(e.metadata_file))
                   for e in table.metadata.metadata_log))


def _listing(fs: fsspec.AbstractFileSystem, location: str) -> dict[str, dict[str, Any]]:
    fs.invalidate_cache()  # s3fs caches listings; pyiceberg writes through its own FileIO
    try:
        found = fs.find(location, detail=True)
    except FileNotFoundError:
        return {}
    return {path: info for path, info in found.items() if info.get("type", "file") != "directory"}


def _mtime(info: Mapping[str, Any]) -> float | None:
    for key in ("LastModified", "mtime", "last_modified", "created"):
        value = info.get(key)
        if value is None:
            continue
        return float(value.timestamp()) if hasattr(value, "timestamp") else float(value)
    return None


def _delete_unreferenced(config: DatasetConfig, fs: fsspec.AbstractFileSystem, named: set[str], location: str,
                         now: float | None, s3: S3Settings | None) -> tuple[int, list[str]]:
    """Delete garbage (named by the history, no longer referenced) and unknown files past the grace."""
    assert config.iceberg is not None
    grace = config.iceberg.orphan_grace_hours * 3600
    now = now if now is not None else time.time()
    for _attempt in range(5):
        table = open_table(config, s3)
        metadata_uri = table.metadata_location
        live = referenced(table.io, metadata_uri)
        listing = _listing(fs, location)
        doomed: list[str] = []
        young: list[str] = []
        for path, info in sorted(listing.items()):
            if path in live or path.rsplit("/", 1)[-1] == "version-hint.text":
                continue
            if path in named:
                doomed.append(path)
            else:
                mtime = _mtime(info)
                (doomed if mtime is not None and now - mtime > grace else young).append(path)
        if open_table(config, s3).metadata_location == metadata_uri:
            break  # no commit since the references were computed
    else:
        raise SweepError(f"dataset {config.name!r}: the Iceberg table kept changing during clean-up; run again")
    _remove(fs, doomed, s3 is not None and config.url is not None)
    return len(doomed), [p[len(location) + 1:] for p in young]


def _remove(fs: fsspec.AbstractFileSystem, paths: Sequence[str], object_store: bool) -> None:
    if not paths:
        return
    if object_store:
        from pipelines.datasets import objectstore

        bucket = paths[0].split("/", 1)[0]
        if objectstore.versioned(fs, bucket):  # type: ignore[arg-type]
            versions = [v for p in paths for v in objectstore.versions_of(fs, "s3://" + p)]  # type: ignore[arg-type]
            objectstore.delete_versions(fs, bucket, versions)  # type: ignore[arg-type]
            return
    fs.rm(list(paths))


# ---------------------------------------------------------------------------------------------
# The decoding search


class Needles:
    """Lower-cased emails to look for in decoded values: whole values, email-like tokens inside text,
    and (for column bounds) Iceberg's truncated bounds of them."""

    def __init__(self, emails: Iterable[str]) -> None:
        self.emails = frozenset(e.strip().lower() for e in emails if e and e.strip())
        self.prefixes = frozenset(e[:n] for e in self.emails for n in range(_TRUNCATED_MIN, len(e)))

    def __bool__(self) -> bool:
        return bool(self.emails)

    def in_text(self, value: str) -> bool:
        text = value.strip().lower()
        if text in self.emails:
            return True
        return "@" in text and any(t.strip(".") in self.emails for t in _EMAIL_TOKEN.findall(text))

    def in_bound(self, value: bytes) -> bool:
        text = value.decode("utf-8", "replace").lower()
        if self.in_text(text) or text in self.prefixes:
            return True
        # an upper bound is truncated and its last character incremented
        return len(text) >= _TRUNCATED_MIN and (text[:-1] + chr(max(ord(text[-1]) - 1, 0))) in self.prefixes


def _walk(value: Any) -> Iterator[Any]:
    """Every leaf of a decoded Avro record or JSON document (records, maps, lists)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str | bytes):
            yield v
        elif isinstance(v, Mapping) or hasattr(v, "items"):
            for k, item in v.items():
                stack += [k, item]
        elif isinstance(v, list | tuple) or hasattr(v, "_data"):
            stack += list(v._data if hasattr(v, "_data") else v)


def _avro_hit(fs: fsspec.AbstractFileSystem, path: str, needles: Needles) -> bool:
    for record in _avro_records(fs, path):
        for leaf in _walk(record):
            if isinstance(leaf, bytes) and needles.in_bound(leaf):
                return True
            if isinstance(leaf, str) and needles.in_text(leaf):
                return True
    return False


def _json_hit(data: bytes, needles: Needles) -> bool:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        document = json.loads(data)
    except ValueError:
        return _bytes_hit(data, needles)
    return any(isinstance(leaf, str) and needles.in_text(leaf) for leaf in _walk(document))


def _bytes_hit(data: bytes, needles: Needles) -> bool:
    return needles.in_text(data.decode("utf-8", "replace"))


def _has_text(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return any(_has_text(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _has_text(t.value_type)
    if pa.types.is_map(t):
        return _has_text(t.key_type) or _has_text(t.item_type)
    return any(check(t) for check in (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view,
                                      pa.types.is_binary, pa.types.is_large_binary, pa.types.is_binary_view))


def _text_leaves(array: pa.Array) -> Iterator[pa.Array]:
    t = array.type
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            yield from _text_leaves(array.field(i))
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        yield from _text_leaves(array.flatten())
    elif pa.types.is_map(t):
        yield from _text_leaves(array.keys)
        yield from _text_leaves(array.items)
    elif _has_text(t):
        yield array


def _values_with_at(leaf: pa.Array) -> list[str]:
    """The distinct values of a text leaf that contain `@` (an email needs one), decoded."""
    import pyarrow.compute as pc

    if pa.types.is_binary(leaf.type) or pa.types.is_large_binary(leaf.type) or pa.types.is_binary_view(leaf.type):
        values = pc.unique(leaf.drop_null()).to_pylist()
        return [v.decode("utf-8", "replace") for v in values if b"@" in v]
    leaf = leaf.cast(pa.large_string()) if not pa.types.is_large_string(leaf.type) else leaf
    return pc.unique(pc.filter(leaf, pc.fill_null(pc.match_substring(leaf, "@"), False))).to_pylist()


def _parquet_hit(fs: fsspec.AbstractFileSystem, path: str, needles: Needles) -> bool:
    """Every text value of every row group (nested and list columns included), and the footer's
    statistics and key-value metadata."""
    with fs.open(path, "rb") as fh:
        pf = pq.ParquetFile(fh)
        meta = pf.metadata
        kv = meta.metadata or {}
        if any(needles.in_text(v.decode("utf-8", "replace")) for v in kv.values()):
            return True
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                stats = meta.row_group(g).column(c).statistics
                if stats is not None and stats.has_min_max:
                    for v in (stats.min, stats.max):
                        if isinstance(v, str | bytes) and needles.in_bound(v if isinstance(v, bytes) else v.encode()):
                            return True
        columns = [f.name for f in pf.schema_arrow if _has_text(f.type)]
        for g in range(meta.num_row_groups):
            rows = pf.read_row_group(g, columns=columns)
            for column in rows.columns:
                for chunk in column.chunks:
                    for leaf in _text_leaves(chunk):
                        if any(needles.in_text(v) for v in _values_with_at(leaf)):
                            return True
    return False


def search(fs: fsspec.AbstractFileSystem, location: str, needles: Needles,
           skip: frozenset[str] = frozenset()) -> list[str]:
    """Files under `location` (an fsspec path) that hold one of `needles` once decoded: Parquet data
    files (values, statistics), Avro manifests and manifest lists (every field, column bounds decoded,
    truncated bounds included), JSON metadata (parsed), anything else as text. Files in `skip` (fsspec
    paths) are not opened. Returns paths relative to `location`, never the matched value."""
    if not needles:
        return []
    found = []
    for path in sorted(_listing(fs, location)):
        if path in skip:
            continue
        name = path.rsplit("/", 1)[-1]
        with fs.open(path, "rb") as fh:
            head = fh.read(4)
        if head == b"PAR1":
            hit = _parquet_hit(fs, path, needles)
        elif head == b"Obj\x01":
            hit = _avro_hit(fs, path, needles)
        else:
            with fs.open(path, "rb") as fh:
                body = fh.read()
            hit = _json_hit(body, needles) if ".json" in name else _bytes_hit(body, needles)
        if hit:
            found.append(path[len(location) + 1:])
    return found
