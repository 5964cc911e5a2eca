"""All file I/O of datasets and reports: listing, exact rewrites (schemas are read by `pipelines.core.schemas`), atomic swaps.

A cleaned dataset's path is a symlink to its current version folder beside it
(`events` -> `.events.versions/<run_id>`). A run writes a complete new version folder (each writer
ends with one `sync_folder`), writes its manifest, then replaces the symlink in one `rename`:
readers see the old complete dataset or the new one, never a mix (docs/decisions/0002-versioned-dataset-swap.md). Unchanged files are hard links
between the tool's own versions, so a version costs only the files that changed; raw snapshot files
are copied in, never linked (`pipelines.datasets.fileid`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import Busy, DataFileError, SweepError

FILE_MODE = 0o640  # personal data and reports: owner and group only, never world-readable
DIR_MODE = 0o750
MANIFEST_NAME = "_gdpr_sweep_manifest.json"
_PARQUET_SUFFIX = ".parquet"


def list_parquet(folder: Path) -> list[str]:
    """Relative paths of the Parquet files under `folder`, sorted; hidden and `_` files skipped."""
    if not folder.exists():
        return []
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in files:
            if name.endswith(_PARQUET_SUFFIX) and not name.startswith((".", "_")):
                found.append(os.path.relpath(os.path.join(root, name), folder))
    return sorted(found)


def num_rows(path: Path) -> int:
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, pa.ArrowException) as exc:
        raise DataFileError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class WriteResult:
    rows_in: int
    rows_out: int


def rewrite_without_rows(src: Path, dst: Path, drop: np.ndarray) -> WriteResult:
    """Write `src` to `dst` without the rows whose 0-based numbers are in `drop` (sorted int64).
    Not synced to disk: the caller syncs the folder once (`sync_folder`).

    Streams one row group at a time and keeps the Arrow schema (types, time zones, decimals,
    nested shapes, metadata), the compression codec, INT96 timestamps and row-group boundaries.
    """
    try:
        reader = pq.ParquetFile(src)
    except (OSError, pa.ArrowException) as exc:
        raise DataFileError(f"{src}: not a readable Parquet file ({type(exc).__name__})") from None
    meta = reader.metadata
    options = _writer_options(reader)
    rows_in = rows_out = offset = 0
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    try:
        with pq.ParquetWriter(tmp, reader.schema_arrow, **options) as writer:
            for i in range(meta.num_row_groups):
                table = reader.read_row_group(i)
                n = table.num_rows
                lo, hi = np.searchsorted(drop, [offset, offset + n])
                if hi > lo:
                    keep = np.ones(n, dtype=bool)
                    keep[drop[lo:hi] - offset] = False
                    table = table.filter(pa.array(keep))
                table = without_unused_dictionary_values(table)
                if table.num_rows:
                    writer.write_table(table, row_group_size=table.num_rows)
                rows_in += n
                rows_out += table.num_rows
                offset += n
        os.chmod(tmp, FILE_MODE)  # made durable with its folder: the writer's `sync_folder`
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return WriteResult(rows_in=rows_in, rows_out=rows_out)


def without_unused_dictionary_values(table: pa.Table) -> pa.Table:
    """`table` with every dictionary-encoded column (top level, or inside structs, lists and maps)
    holding only the values its rows use. A file whose Arrow schema has a dictionary type (pandas
    categoricals, Polars categoricals) is read with each row group's whole dictionary page, and
    `filter` keeps the dictionary as it is: written back, a removed row's email would stay in the
    file's dictionary page, where no row refers to it and no row-level check sees it. Casting to
    the plain type and back builds a dictionary of the values left, in the same type."""
    for i, field in enumerate(table.schema):
        if _has_dictionary(field.type):
            column = table.column(i)
            table = table.set_column(i, field, column.cast(_plain_type(field.type)).cast(field.type))
    return table


def _has_dictionary(t: pa.DataType) -> bool:
    return pa.types.is_dictionary(t) or any(_has_dictionary(t.field(i).type) for i in range(t.num_fields))


def _plain_type(t: pa.DataType) -> pa.DataType:
    """`t` with each dictionary type replaced by its value type (field names, nullability and
    metadata kept); DataFileError for a container this cannot rebuild."""
    if pa.types.is_dictionary(t):
        return _plain_type(t.value_type)
    if not _has_dictionary(t):
        return t
    if pa.types.is_struct(t):
        return pa.struct([_plain_field(t.field(i)) for i in range(t.num_fields)])
    if pa.types.is_large_list(t):
        return pa.large_list(_plain_field(t.value_field))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(_plain_field(t.value_field), t.list_size)
    if pa.types.is_list(t):
        return pa.list_(_plain_field(t.value_field))
    if pa.types.is_map(t):
        return pa.map_(_plain_field(t.key_field), _plain_field(t.item_field), t.keys_sorted)
    raise DataFileError(f"a dictionary-encoded column inside {t} cannot be rewritten without its removed "
                        "values; write the dataset without dictionary types inside that column")


def _plain_field(f: pa.Field) -> pa.Field:
    return pa.field(f.name, _plain_type(f.type), f.nullable, f.metadata)


def _writer_options(reader: pq.ParquetFile) -> dict[str, Any]:
    meta = reader.metadata
    options: dict[str, Any] = {"version": "2.6", "write_statistics": True}
    if meta.num_row_groups and meta.num_columns:
        # Each column keeps its own codec (Parquet does not record the level: the codec's default).
        first = meta.row_group(0)
        options["compression"] = {
            first.column(i).path_in_schema: "none" if first.column(i).compression == "UNCOMPRESSED"
            else first.column(i).compression.lower() for i in range(meta.num_columns)}
    physical = {reader.schema.column(i).physical_type for i in range(len(reader.schema))}
    if "INT96" in physical:
        options["use_deprecated_int96_timestamps"] = True
    return options


def link_own(src: Path, dst: Path) -> None:
    """Hard-link a file the tool owns (a file of its previous version, or its own copy of a raw file)
    to `dst`, atomically; not synced to disk: the caller syncs the folder once (`sync_folder`). Files
    the tool does not own are copied instead (`pipelines.datasets.fileid.copy_exact`)."""
    dst.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.link(src, tmp)
    os.replace(tmp, dst)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file through a temporary name and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def sync_folder(folder: Path) -> None:
    """Make every file written under `folder` durable before anything points at them.

    One `syncfs` of the folder's file system instead of an `fsync` per file (a few ms each, 369
    files in the benchmark's sweep); where `syncfs` is not available or fails, each file and folder
    is fsynced. It flushes what this machine wrote: writers on other machines (Dask) call it on
    their own files too (`scaleout.write_partition`)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _syncfs is not None and _syncfs(fd) == 0:
            return
    finally:
        os.close(fd)
    for root, _dirs, files in os.walk(folder):
        for name in files:
            _fsync(Path(root, name))
        _fsync_dir(Path(root))


def _load_syncfs():  # type: ignore[no-untyped-def]
    """libc's `syncfs` (Linux) from the running process's own symbols, or None."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_syncfs = _load_syncfs()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Dataset versions: the dataset path is a symlink to `.<name>.versions/<version>`.


def versions_dir(dataset_path: Path) -> Path:
    return dataset_path.parent / f".{dataset_path.name}.versions"


def current_version(dataset_path: Path) -> Path | None:
    """The folder readers currently see, or None when the dataset does not exist yet."""
    if dataset_path.is_symlink():
        return dataset_path.parent / os.readlink(dataset_path)
    if dataset_path.is_dir():
        return dataset_path
    return None


def read_manifest(version: Path | None) -> dict[str, Any]:
    if version is None:
        return {}
    path = version / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise SweepError(f"{path}: unreadable state manifest ({exc}); remove it to rebuild") from None


def new_version(dataset_path: Path, run_id: str) -> Path:
    folder = versions_dir(dataset_path) / run_id
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, mode=DIR_MODE)
    return folder


def adopt_plain_folder(dataset_path: Path, run_id: str) -> None:
    """Turn a plain dataset folder into the versioned layout (first run on an existing lake)."""
    if dataset_path.is_dir() and not dataset_path.is_symlink():
        target = versions_dir(dataset_path) / f"adopted-{run_id}"
        target.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        os.rename(dataset_path, target)
        _point(dataset_path, target)


def switch_version(dataset_path: Path, version: Path) -> Path | None:
    """Atomically point the dataset at `version`; return the superseded version folder."""
    if dataset_path.is_dir() and not dataset_path.is_symlink():
        adopt_plain_folder(dataset_path, version.name)
    old = current_version(dataset_path)
    _fsync_dir(version)
    _point(dataset_path, version)
    return old if old is not None and old.resolve() != version.resolve() else None


def _point(dataset_path: Path, version: Path) -> None:
    link_tmp = dataset_path.with_name(f".{dataset_path.name}.switch")
    link_tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(version, dataset_path.parent), link_tmp)
    os.replace(link_tmp, dataset_path)
    _fsync_dir(dataset_path.parent)


def remove_stale_versions(dataset_path: Path) -> list[Path]:
    """Delete every version folder the dataset does not point at (superseded or left by a crash)."""
    folder = versions_dir(dataset_path)
    if not folder.exists():
        return []
    keep = current_version(dataset_path)
    removed = []
    for child in sorted(folder.iterdir()):
        if keep is not None and child.resolve() == keep.resolve():
            continue
        shutil.rmtree(child) if child.is_dir() else child.unlink()
        removed.append(child)
    return removed


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the dot-named `*.tmp` files a killed run left under `folder` (call it under the run lock:
    no live writer exists then). Readers never saw them; this only tidies up."""
    if not folder.exists():
        return []
    stale = [p for p in folder.rglob(".*.tmp") if p.is_file()]
    for path in stale:
        path.unlink()
    return stale


PRIVATE_UMASK = 0o027  # what FILE_MODE / DIR_MODE promise, for files third-party code creates too


def restrict_umask() -> int:
    """Make the process umask at least PRIVATE_UMASK (never looser than it was); return the old one.

    Everything the process creates from then on (Prefect's home and database, SQLite's WAL files,
    DuckDB and pyarrow temporaries, folders made with `mkdir(parents=True)`) is not world-readable."""
    old = os.umask(PRIVATE_UMASK)
    os.umask(old | PRIVATE_UMASK)
    return old


@contextmanager
def run_lock(work_dir: Path, name: str = "sweep") -> Iterator[None]:
    """Hold an exclusive lock for one run over a working folder; Busy if another run holds it.

    While the lock is held the process umask is at least PRIVATE_UMASK (see `restrict_umask`)."""
    old_umask = restrict_umask()
    work_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    path = work_dir / f"{name}.lock"
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"another gdpr-sweep run holds {path}; wait for it to finish and run again") from None
        yield
    finally:
        fh.close()
        os.umask(old_umask)
