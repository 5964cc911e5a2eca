"""The files of an Iceberg table: which ones its metadata references, which ones it ever named, and
their removal (pipelines/datasets/iceberg.py decides when; docs/decisions/0281-iceberg-tables.md).
Paths are fsspec paths: a local path, or `bucket/key`.

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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import fsspec

VERSION_HINT = "version-hint.text"
"""A Hadoop catalog's pointer to the current metadata: never deleted, never garbage."""


def strip(uri: str) -> str:
    """What fsspec names a file by: a local path, or `bucket/key` for an object URL."""
    for scheme in ("file://", "s3a://", "s3n://", "s3://"):
        if uri.startswith(scheme):
            return uri[len(scheme):]
    return uri


def listing(fs: fsspec.AbstractFileSystem, location: str) -> dict[str, dict[str, Any]]:
    """Every file under `location`, listed now. s3fs caches listings in a file system instance the
    whole process shares (DuckDB reads through it too), and writers add files through their own
    clients (pyiceberg through pyarrow): the cache is dropped before listing and again after, so no
    later read in this process globs against a listing that misses a newer file."""
    fs.invalidate_cache()
    try:
        found = fs.find(location, detail=True)
    except FileNotFoundError:
        return {}
    finally:
        fs.invalidate_cache()
    return {path: info for path, info in found.items() if info.get("type", "file") != "directory"}


def mtime(info: Mapping[str, Any]) -> float | None:
    for key in ("LastModified", "mtime", "last_modified", "created"):
        value = info.get(key)
        if value is None:
            continue
        return float(value.timestamp()) if hasattr(value, "timestamp") else float(value)
    return None


def metadata(io: Any, uri: str) -> Any | None:
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
    meta = metadata(io, metadata_uri)
    if meta is None:
        return set()
    found = {strip(metadata_uri)}
    found |= {strip(s.statistics_path) for s in [*meta.statistics, *meta.partition_statistics]}
    seen: set[str] = set()
    for snapshot in meta.snapshots:
        if snapshot.manifest_list:
            found.add(strip(snapshot.manifest_list))
        try:
            manifests = snapshot.manifests(io)
        except FileNotFoundError:
            continue
        for manifest in manifests:
            path = manifest.manifest_path
            found.add(strip(path))
            if path in seen:
                continue
            seen.add(path)
            try:
                entries = manifest.fetch_manifest_entry(io, discard_deleted=not named)
            except FileNotFoundError:
                continue
            found |= {strip(e.data_file.file_path) for e in entries}
    return found


def history(io: Any, metadata_uri: str) -> set[str]:
    """Files named by the current metadata and by every metadata file its log lists (still on disk)."""
    meta = metadata(io, metadata_uri)
    named: set[str] = set()
    for uri in [*(e.metadata_file for e in (meta.metadata_log if meta else [])), metadata_uri]:
        named |= referenced(io, uri, named=True)
    return named


def unreferenced(files: Mapping[str, Mapping[str, Any]], live: set[str], named: set[str], grace_seconds: float,
                 now: float) -> tuple[list[str], list[str]]:
    """Split the files under a table location that `live` (the current metadata's references) does not
    hold into those to delete (garbage: `named` by the history; unknown files older than the grace) and
    those to keep (unknown files younger than it: perhaps a writer's commit in progress)."""
    doomed: list[str] = []
    young: list[str] = []
    for path, info in sorted(files.items()):
        if path in live or path.rsplit("/", 1)[-1] == VERSION_HINT:
            continue
        if path in named:
            doomed.append(path)
        else:
            modified = mtime(info)
            (doomed if modified is not None and now - modified > grace_seconds else young).append(path)
    return doomed, young


def remove(fs: fsspec.AbstractFileSystem, paths: Sequence[str], object_store: bool) -> None:
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


