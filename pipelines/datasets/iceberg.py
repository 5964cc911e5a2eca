"""Iceberg tables as a dataset kind (`format = "iceberg"`, docs/decisions/0281-iceberg-tables.md).

Through pyiceberg 0.12, with any catalog it supports (default: its SQL catalog on a SQLite file):

1. `plan_table`: the data files of the table's current snapshot, as a DatasetPlan the §3 matcher
   (pipelines/core/match.py, the same code as every other kind) reads like any Parquet files.
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

Which files may be deleted, and why that is safe for concurrent writers: pipelines/datasets/iceberg_files.py.

Time travel to snapshots before the purge is gone afterwards: that is the point of the purge. The
current metadata's metadata log still names the deleted metadata files (as after Iceberg's own
`write.metadata.delete-after-commit`); those versions can no longer be read.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import fsspec

from pipelines.config.settings import DatasetConfig, S3Settings
from pipelines.core.errors import DataFileError, SweepError
from pipelines.core.model import DatasetMatches, DatasetOutcome, DatasetPlan, FileOutcome, FilePlan
from pipelines.datasets import iceberg_files as files
from pipelines.datasets.iceberg_commit import (
    SNAPSHOT_RUN_ID,
    commit_purge,
    drop_deleted_entries,
    has_deleted_bounds,
)
from pipelines.datasets.iceberg_files import strip
from pipelines.datasets.iceberg_search import Needles, search
from pipelines.datasets.iceberg_table import current_data_files, load_table, open_table, reader_path, relpath
from pipelines.datasets.iceberg_table import location as table_location


@dataclass(frozen=True)
class IcebergOutcome(DatasetOutcome):
    """A purged Iceberg table. `files` are the input data files (rows kept from each); `outputs` the
    data files of the snapshot after the purge, which verification re-reads."""

    snapshot_before: int | None = None
    snapshot_after: int | None = None
    outputs: tuple[FileOutcome, ...] = ()
    written: tuple[str, ...] = field(default=(), compare=False)
    run_id: str = ""
    """Locations of the data files this run wrote (relative to the table location)."""

    def verifiable(self) -> DatasetOutcome:
        """The table's data files after the purge, as an outcome with nothing removed."""
        return DatasetOutcome(self.name, self.kind, self.version, self.outputs, {}, {})


@dataclass(frozen=True)
class IcebergCleanup:
    """What `finish_purge` did; counts and file names relative to the table location only."""

    snapshots_expired: int
    files_deleted: int
    unknown_kept: tuple[str, ...]
    """Unreferenced files younger than the grace period, left in place (a writer may be committing them)."""
    files_searched: int


# ---------------------------------------------------------------------------------------------
# Extract


def plan_table(config: DatasetConfig, s3: S3Settings | None = None) -> DatasetPlan:
    """The current snapshot's data files, with the row counts the manifests record."""
    table = open_table(config, s3)
    files = [FilePlan(relpath(table, path, config), reader_path(path), "clean", int(df.record_count), None)
             for path, df in current_data_files(table).items()]
    snapshot = table.current_snapshot()
    return DatasetPlan(config, tuple(files), None,
                       {"iceberg_snapshot": snapshot.snapshot_id if snapshot is not None else None,
                        "iceberg_metadata": table.metadata_location}, table_schema=True)


# ---------------------------------------------------------------------------------------------
# Purge: one copy-on-write commit keyed on row positions


def purge_table(plan: DatasetPlan, matches: DatasetMatches, run_id: str, s3: S3Settings | None = None,
                fs: fsspec.AbstractFileSystem | None = None) -> IcebergOutcome:
    """Remove the matched rows in one overwrite commit (none when nothing matched)."""
    config = plan.config
    fs = fs if fs is not None else fsspec.filesystem("file")
    table = open_table(config, s3)
    before = table.current_snapshot()
    before_id = before.snapshot_id if before is not None else None
    if before_id != plan.previous_manifest.get("iceberg_snapshot"):
        raise SweepError(f"dataset {config.name!r}: the Iceberg table changed during the run (snapshot "
                         f"{plan.previous_manifest.get('iceberg_snapshot')} -> {before_id}); run again")
    written: list[str] = []
    if matches.rows_removed:
        written = commit_purge(table, plan, matches, run_id, fs)
        table = open_table(config, s3)
        fs.invalidate_cache()  # s3fs caches listings; pyiceberg wrote through its own FileIO
    return _outcome(table, plan, matches, before_id, {relpath(table, w, config) for w in written}, fs, run_id)


def _outcome(table: Any, plan: DatasetPlan, matches: DatasetMatches, before_id: int | None, new_rel: set[str],
             fs: fsspec.AbstractFileSystem, run_id: str) -> IcebergOutcome:
    """Input files with rows kept from each; output files = the table's data files now."""
    config = plan.config
    by_rel = {f.relpath: f for f in plan.files}
    after = table.current_snapshot()
    after_files = {relpath(table, path, config): df for path, df in current_data_files(table).items()}
    file_outcomes = []
    for f in plan.files:
        kept = f.relpath in after_files
        sha_in = _sha256(fs, str(f.input_path))
        file_outcomes.append(FileOutcome(f.relpath, f.origin, f.rows, f.rows - len(matches.drops.get(f.relpath, ())),
                                         sha_in, sha_in if kept else "", rewritten=not kept))
    known = {o.relpath: o.sha256_out for o in file_outcomes if o.sha256_out}
    outputs = []
    for rel, df in after_files.items():
        n, sha = int(df.record_count), known.get(rel) or _sha256(fs, df.file_path)
        outputs.append(FileOutcome(rel, "clean" if rel in by_rel else "iceberg", n, n, sha, sha,
                                   rewritten=rel in new_rel))
    outcome = IcebergOutcome(config.name, config.kind, reader_path(table_location(table)), tuple(file_outcomes),
                             dict(matches.by_reason), dict(matches.by_entry),
                             snapshot_before=before_id, snapshot_after=after.snapshot_id if after else None,
                             outputs=tuple(outputs), written=tuple(sorted(new_rel)), run_id=run_id)
    rows_after = sum(o.rows_out for o in outputs if o.relpath in by_rel or o.rewritten)
    if matches.rows_removed and rows_after != outcome.rows_out:
        raise SweepError(f"dataset {config.name!r}: the table holds {rows_after} rows of this run's files after "
                         f"the purge, {outcome.rows_out} expected; run again")
    return outcome


def _sha256(fs: fsspec.AbstractFileSystem, uri: str) -> str:
    digest = hashlib.sha256()
    try:
        with fs.open(strip(uri), "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise DataFileError(f"{uri}: cannot be read ({type(exc).__name__})") from None
    return digest.hexdigest()


def verifiable(outcome: DatasetOutcome) -> DatasetOutcome:
    """What verification re-reads: the table's data files after the purge."""
    return outcome.verifiable()


# ---------------------------------------------------------------------------------------------
# Finish: expire snapshots, delete unreferenced files, search the location


def finish_purge(config: DatasetConfig, outcome: DatasetOutcome, emails: Iterable[str],
                 s3: S3Settings | None = None, fs: fsspec.AbstractFileSystem | None = None,
                 now: float | None = None) -> IcebergCleanup:
    """Expire older snapshots, delete the files no longer referenced, then prove no unscoped entry's
    email is left anywhere under the table location.

    Clean-up runs when this run removed rows, when an earlier purge's clean-up is unfinished, or when
    any file but the current snapshot's data files (verification re-read those) holds such an email:
    older snapshots' files, manifests, metadata, files no metadata references. Otherwise (a quiet
    night) nothing is committed or deleted.

    `emails`: those of entries without a scope; they must be gone from every file. A scoped entry's
    email may rightly survive in rows (and bounds) of other scopes."""
    fs = fs if fs is not None else fsspec.filesystem("file")
    needles = Needles(emails)
    table = open_table(config, s3)
    location = strip(table_location(table))
    expired = deleted = 0
    unknown_kept: list[str] = []
    verified = frozenset(strip(p) for p in current_data_files(table))
    clean_up = bool(outcome.rows_removed) or _purged_lineage(table, fs)
    leaks = [] if clean_up else search(fs, location, needles, skip=verified)
    if clean_up or leaks:
        named = files.history(table.io, table.metadata_location)
        if has_deleted_bounds(table):  # another engine's delete left bounds in the current manifests
            drop_deleted_entries(table, getattr(outcome, "run_id", "") or "clean-up")
            table = open_table(config, s3)
        current = table.current_snapshot()
        old = [s.snapshot_id for s in table.metadata.snapshots if current is None or s.snapshot_id != current.snapshot_id]
        if old:
            table.maintenance.expire_snapshots().by_ids(old).commit()
            expired = len(old)
        deleted, unknown_kept = _delete_unreferenced(config, fs, named, location, now, s3)
        leaks = search(fs, location, needles)
    if leaks:
        young = set(leaks) & set(unknown_kept)
        raise SweepError(f"dataset {config.name!r}: {len(leaks)} file(s) under the Iceberg table location still "
                         f"hold a blacklisted email after clean-up: {leaks}; "
                         + (f"{sorted(young)} are files no metadata references, younger than orphan_grace_hours "
                            "(a writer may still commit them): delete them or run again once they are older"
                            if young else "remove the rows with the table's own engine and run again"))
    return IcebergCleanup(expired, deleted, tuple(unknown_kept), len(files.listing(fs, location)))


def _purged_lineage(table: Any, fs: fsspec.AbstractFileSystem) -> bool:
    """An earlier purge's clean-up is unfinished: snapshots, or metadata files still on disk, older than
    the newest snapshot a sweep run made (a crash between the purge commit and the clean-up)."""
    ours = [s for s in table.metadata.snapshots if s.summary is not None and s.summary[SNAPSHOT_RUN_ID]]
    if not ours:
        return False
    newest = max(s.timestamp_ms for s in ours)
    return (any(s.timestamp_ms < newest for s in table.metadata.snapshots)
            or any(e.timestamp_ms < newest and fs.exists(strip(e.metadata_file))
                   for e in table.metadata.metadata_log))


def _delete_unreferenced(config: DatasetConfig, fs: fsspec.AbstractFileSystem, named: set[str], location: str,
                         now: float | None, s3: S3Settings | None) -> tuple[int, list[str]]:
    """Delete garbage (named by the history, no longer referenced) and unknown files past the grace;
    the references are those of the metadata current when deleting (recomputed if a commit lands)."""
    assert config.iceberg is not None
    grace = config.iceberg.orphan_grace_hours * 3600
    now = now if now is not None else time.time()
    for _attempt in range(5):
        table = open_table(config, s3)
        live = files.referenced(table.io, table.metadata_location)
        doomed, young = files.unreferenced(files.listing(fs, location), live, named, grace, now)
        if load_table(config, s3).metadata_location == table.metadata_location:
            break  # no commit since the references were computed
    else:
        raise SweepError(f"dataset {config.name!r}: the Iceberg table kept changing during clean-up; run again")
    files.remove(fs, doomed, s3 is not None and config.url is not None)
    return len(doomed), [p[len(location) + 1:] for p in young]
