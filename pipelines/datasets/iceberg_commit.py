"""Commits the Iceberg purge makes through pyiceberg's own snapshot producers
(pipelines/datasets/iceberg.py; docs/decisions/0281-iceberg-tables.md).

- `commit_purge`: the copy-on-write overwrite keyed on row positions. The manifest entries recording
  the replaced files as deleted carry no column bounds: pyiceberg copies the old file's metrics into
  them, and a bound may be a purged email that would then outlive every expired snapshot.
- `drop_deleted_entries`: for a table whose current manifests hold such `deleted` entries with bounds
  (another engine's delete, e.g. Spark's or pyiceberg's `Table.delete`), one `replace` commit that
  rewrites those manifests with their live entries only; the table's data is unchanged.

Both subclass pyiceberg 0.12's private `_OverwriteFiles` and read `DataFile` fields by position: the
pin `pyiceberg>=0.12,<0.13` in pyproject.toml guards them (tests/scaleout/test_iceberg.py fails without).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa

from pipelines.core.errors import SweepError
from pipelines.core.model import DatasetMatches, DatasetPlan
from pipelines.datasets.iceberg_files import strip
from pipelines.datasets.iceberg_table import current_data_files, relpath

SNAPSHOT_RUN_ID = "gdpr-sweep.run-id"
"""Snapshot summary property naming the sweep run that made a commit (a run id, nothing personal)."""


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


def commit_purge(table: Any, plan: DatasetPlan, matches: DatasetMatches, run_id: str,
                  fs: fsspec.AbstractFileSystem) -> list[str]:
    """Rewrite the files with rows to drop and commit the replacement; the new files' locations. On
    any failure the files written so far are deleted and the table is as before."""
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.io.pyarrow import _dataframe_to_data_files
    from pyiceberg.table.snapshots import Operation

    config = plan.config
    by_rel = {f.relpath: f for f in plan.files}
    live = {relpath(table, path, config): df for path, df in current_data_files(table).items()}
    commit_uuid, counter = uuid.uuid4(), itertools.count(0)
    written: list[Any] = []
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
        with table.transaction() as tx:
            producer = _overwrite_class()(operation=Operation.OVERWRITE if written else Operation.DELETE,
                                          transaction=tx, io=table.io, commit_uuid=commit_uuid,
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
    return [df.file_path for df in written]


def _delete_quietly(fs: fsspec.AbstractFileSystem, uris: Iterable[str]) -> None:
    for uri in uris:
        try:
            fs.rm(strip(uri))
        except OSError:
            pass  # left for the next run's orphan removal (it holds only kept rows)


def _drop_deleted_class() -> type:
    """An overwrite that adds and removes no file and rewrites the parent's manifests holding `deleted`
    entries with their live entries only (as `existing`), recorded as a `replace` snapshot."""
    from pyiceberg.manifest import ManifestEntry, ManifestEntryStatus
    from pyiceberg.table.snapshots import Operation, Summary
    from pyiceberg.table.update.snapshot import _OverwriteFiles

    class _DropDeleted(_OverwriteFiles):  # type: ignore[misc]
        def _deleted_entries(self) -> list[Any]:
            return []

        def _existing_manifests(self) -> list[Any]:
            kept = []
            parent = self._transaction.table_metadata.snapshot_by_name(name=self._target_branch)
            for manifest in parent.manifests(io=self._io) if parent is not None else []:
                entries = manifest.fetch_manifest_entry(io=self._io, discard_deleted=False)
                if all(e.status != ManifestEntryStatus.DELETED for e in entries):
                    kept.append(manifest)
                    continue
                live = [e for e in entries if e.status != ManifestEntryStatus.DELETED]
                if not live:
                    continue
                with self.new_manifest_writer(self.spec(manifest.partition_spec_id)) as writer:
                    for e in live:
                        writer.add_entry(ManifestEntry.from_args(
                            status=ManifestEntryStatus.EXISTING, snapshot_id=e.snapshot_id,
                            sequence_number=e.sequence_number, file_sequence_number=e.file_sequence_number,
                            data_file=e.data_file))
                kept.append(writer.to_manifest_file())
            return kept

        def _summary(self, snapshot_properties: Any = None) -> Any:
            summary = super()._summary(snapshot_properties or {})
            return Summary(Operation.REPLACE, **summary.additional_properties)

    return _DropDeleted


def has_deleted_bounds(table: Any) -> bool:
    """Whether the current snapshot's manifests hold `deleted` entries that carry column bounds."""
    from pyiceberg.manifest import ManifestEntryStatus

    snapshot = table.current_snapshot()
    for manifest in snapshot.manifests(table.io) if snapshot is not None else []:
        for e in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
            if e.status == ManifestEntryStatus.DELETED and (e.data_file.lower_bounds or e.data_file.upper_bounds):
                return True
    return False


def drop_deleted_entries(table: Any, run_id: str) -> None:
    """One `replace` commit whose manifests keep only the live entries (see the module's docstring)."""
    from pyiceberg.table.snapshots import Operation

    with table.transaction() as tx:
        _drop_deleted_class()(operation=Operation.OVERWRITE, transaction=tx, io=table.io,
                              snapshot_properties={SNAPSHOT_RUN_ID: run_id}).commit()
