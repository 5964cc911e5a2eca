"""The sweep's steps, pure functions the flow wires together: plan, purge, verify, publish.

Extract: `plan_dataset` picks each file's input (a new raw snapshot, or the current cleaned file).
Match: `pipelines.core.match.find_matches`. Purge: `write_version` writes a complete new version.
Verify: `verify_versions` re-reads the outputs. Publish: `publish_version` swaps it in atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from pipelines.config.settings import DatasetConfig
from pipelines.core.errors import ChangedWhileRead, InputError, StorageError, storage_error
from pipelines.core.identity import NORMALISATION
from pipelines.core.match import check_files, find_matches, may_match
from pipelines.core.model import (
    DatasetInput,
    DatasetMatches,
    DatasetOutcome,
    DatasetPlan,
    FileChange,
    FileOutcome,
    FilePlan,
    MatchResult,
    Verification,
)
from pipelines.datasets import fileid, storage
from pipelines.datasets.settle import settle_raw


def source_signature(path: Path) -> dict[str, int] | None:
    """A raw snapshot file's identity now (`pipelines.datasets.fileid`), or None when it is gone."""
    return fileid.stat_identity(path)


def match_fingerprint(configs: Sequence[DatasetConfig], link_through_events: bool) -> str:
    """What a verification depended on besides the entries: every dataset's identity columns and the
    linking switch, and the identity normalisation (a new one re-matches every file once). A sweep
    relies on an earlier verification only when this is unchanged."""
    shape = {"datasets": sorted([c.name, c.kind, c.identity_columns] for c in configs),
             "link_devices_through_events": link_through_events, "normalisation": NORMALISATION}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


def plan_dataset(config: DatasetConfig, fingerprint: str | None = None) -> DatasetPlan:
    """Choose each file's input: a raw snapshot file that is new or changed since it was last taken
    in (copied into a folder the run owns, `take_in`), otherwise the current cleaned file (its
    recorded checksum and row count trusted only while its identity is the one recorded when its
    version was published; otherwise it is hashed, and reported if its content changed).

    With `fingerprint` (`match_fingerprint`) equal to the one the current version was written with,
    clean files carry the blacklist version they were verified against (recorded, not relied on).
    """
    previous = storage.current_version(config.path)
    manifest = storage.read_manifest(previous)
    incremental = fingerprint is not None and manifest.get("match_fingerprint") == fingerprint
    files: dict[str, FilePlan] = {}
    changes: list[FileChange] = []
    if previous is not None:
        files, changes = _plan_clean(config, previous, manifest, incremental)
    if config.source is not None:
        intake = storage.versions_dir(config.path) / f".intake-{uuid.uuid4().hex}"
        for rel in storage.list_parquet(config.source):
            path = config.source / rel
            if rel in files and fileid.same_file(files[rel].source_signature, source_signature(path)):
                continue
            taken = take_in(config, rel, path, intake / rel)
            if isinstance(taken, FileChange):
                changes.append(taken)
            else:
                files[rel] = taken
    if previous is None and not files:
        # Nothing to sweep and nothing swept before: a wrong `path`/`source` more likely than a real lake.
        where = f"no Parquet files in {config.source} and " if config.source is not None else ""
        raise InputError(f"dataset {config.name!r}: {where}no cleaned version at {config.path}; "
                         "check 'source' and 'path' in the configuration")
    check_files(config, [files[r].input_path for r in sorted(files)])
    return DatasetPlan(config, tuple(files[r] for r in sorted(files)), previous, manifest, tuple(changes))


def _plan_clean(config: DatasetConfig, previous: Path, manifest: dict[str, Any],
                incremental: bool) -> tuple[dict[str, FilePlan], list[FileChange]]:
    known = manifest.get("files", {})
    recorded = fileid.read_identities(previous)
    files: dict[str, FilePlan] = {}
    changes: list[FileChange] = []
    for rel in storage.list_parquet(previous):
        path, entry = previous / rel, known.get(rel, {})
        now = fileid.stat_identity(path)
        rows, sha, changed = entry.get("rows"), entry.get("sha256"), False
        if rows is None or sha is None or not fileid.same_file(recorded.get(rel), now):
            found = storage.sha256_file(path)  # no identity on record for these bytes: hash them
            changed = sha is not None and found != sha
            if changed:
                changes.append(FileChange(config.name, str(config.path / rel), "changed outside the tool",
                                          f"content no longer matches the recorded SHA-256 {sha}; "
                                          "matched again against every entry"))
            rows = storage.num_rows(path) if rows is None or changed else rows
            sha = found
        verified = entry.get("blacklist_version") if incremental and not changed else None
        files[rel] = FilePlan(rel, path, "clean", rows, sha, entry.get("source"), verified, now)
    return files, changes


def take_in(config: DatasetConfig, rel: str, raw: Path, copy: Path) -> FilePlan | FileChange:
    """Copy a raw snapshot file into the run's own folder and plan it; a file that vanished or kept
    changing while copied is left for the next run (a FileChange says so)."""
    for _attempt in range(2):
        try:
            identity = fileid.copy_exact(raw, copy)
        except FileNotFoundError:
            return FileChange(config.name, str(raw), "changed since read", "vanished before it was read; not taken in")
        except ChangedWhileRead:
            continue
        except OSError as exc:
            raise storage_error(exc, raw, "taking in raw snapshot file") from None
        return FilePlan(rel, copy, "source", storage.num_rows(copy), None, identity,
                        identity=fileid.stat_identity(copy), raw_path=raw)
    return FileChange(config.name, str(raw), "changed since read",
                      "kept changing while it was read; not taken in, the next run takes it in")


def _write_file(f: FilePlan, out: Path, drop: np.ndarray | None) -> FileOutcome:
    """One file of the new version. Its input must still have the identity it was planned (and
    matched) with, before and after it is read; the output's identity is recorded for `publish_version`."""
    _check_unchanged(f)
    try:
        return _write_checked(f, out, drop)
    except (ChangedWhileRead, AssertionError):
        raise
    except OSError as exc:
        raise storage_error(exc, out, "writing") from None


def _write_checked(f: FilePlan, out: Path, drop: np.ndarray | None) -> FileOutcome:
    sha_in = f.sha256 or storage.sha256_file(f.input_path)
    if drop is not None and len(drop):
        written = storage.rewrite_without_rows(f.input_path, out, drop)
        _check_unchanged(f)
        if written.rows_in != f.rows:
            raise AssertionError(f"{f.input_path}: read {written.rows_in} rows, metadata says {f.rows}")
        return FileOutcome(f.relpath, f.origin, f.rows, written.rows_out, sha_in, storage.sha256_file(out), True,
                           fileid.stat_identity(out))
    if _owned(f):  # the run's own copy of a raw file, or a file of the tool's previous version
        storage.link_own(f.input_path, out)
    else:  # never share an inode with a file the tool does not own (§5)
        identity = fileid.copy_exact(f.input_path, out)
        if f.identity is not None and not fileid.same_file(identity, f.identity):
            raise _changed(f)
    return FileOutcome(f.relpath, f.origin, f.rows, f.rows, sha_in, sha_in, False, fileid.stat_identity(out))


def _owned(f: FilePlan) -> bool:
    """May the new version hard-link this input? The run's copy of a raw file, or a cleaned file no
    other name links to (one linked from outside, e.g. by a version before this rule, is copied)."""
    if f.origin == "source" and f.raw_path is not None:
        return True
    return f.origin == "clean" and os.stat(f.input_path).st_nlink == 1


def _check_unchanged(f: FilePlan) -> None:
    if f.identity is not None and not fileid.same_file(fileid.stat_identity(f.input_path), f.identity):
        raise _changed(f)


def _changed(f: FilePlan) -> ChangedWhileRead:
    return ChangedWhileRead(f"{f.input_path}: changed while this run read it (not by gdpr-sweep); nothing was "
                            "published; run the sweep again, it matches the file's new content")


def write_version(plan: DatasetPlan, matches: DatasetMatches, run_id: str, blacklist_version: int,
                  fingerprint: str | None = None, workers: int = 2) -> DatasetOutcome:
    """Write the dataset's complete new version: rewrite files with matches, link the others.

    Files are written by `workers` threads (pyarrow and hashlib release the GIL). Every file of the
    new version is recorded as verified against `blacklist_version`, under `fingerprint`.
    """
    version = storage.new_version(plan.config.path, run_id)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        outcomes = list(pool.map(lambda f: _write_file(f, version / f.relpath, matches.drops.get(f.relpath)),
                                 plan.files))
    storage.sync_folder(version)
    return finish_version(plan, version, outcomes, matches, run_id, blacklist_version, fingerprint)


def write_file(plan: DatasetPlan, relpath: str, drop: np.ndarray | None, run_id: str) -> FileOutcome:
    """One file of the new version (a partition of `write_version`, for a task runner to map); the
    version folder is created by `storage.new_version` first, the manifest by `finish_version` after."""
    f = next(f for f in plan.files if f.relpath == relpath)
    return _write_file(f, storage.versions_dir(plan.config.path) / run_id / relpath, drop)


def finish_version(plan: DatasetPlan, version: Path, outcomes: Sequence[FileOutcome], matches: DatasetMatches,
                   run_id: str, blacklist_version: int, fingerprint: str | None = None) -> DatasetOutcome:
    """Write the version's manifest once all its files are written and synced; return the dataset's outcome."""
    manifest_files = {o.relpath: {"rows": o.rows_out, "sha256": o.sha256_out, "source": f.source_signature,
                                  "blacklist_version": blacklist_version}
                      for f, o in zip(plan.files, outcomes, strict=True)}
    try:
        storage.write_json_atomic(version / storage.MANIFEST_NAME, {
            "manifest_version": 1, "dataset": plan.config.name, "run_id": run_id,
            "blacklist_version": blacklist_version, "match_fingerprint": fingerprint, "files": manifest_files,
            # batches the ingest guard took in (pipelines/operations/ingest.py): kept so a re-sent batch stays a duplicate
            "ingested_batches": plan.previous_manifest.get("ingested_batches", {}),
        })
    except OSError as exc:
        raise storage_error(exc, version / storage.MANIFEST_NAME, "writing") from None
    return DatasetOutcome(plan.config.name, plan.config.kind, version, tuple(outcomes),
                          dict(matches.by_reason), dict(matches.by_entry))


def quiet_outcome(plan: DatasetPlan, matches: DatasetMatches, fingerprint: str | None) -> DatasetOutcome | None:
    """The current version as a local dataset's outcome when nothing must be written: no raw file taken
    in, no file changed outside the tool or unknown to the manifest, every file's identity the one
    recorded (so its checksum and row count are the manifest's), the manifest written under
    `fingerprint`, and no row to drop. Otherwise None (a new version is written)."""
    manifest, previous = plan.previous_manifest, plan.previous_version
    known = manifest.get("files", {})
    if (previous is None or matches.drops or plan.changes or fingerprint is None
            or manifest.get("match_fingerprint") != fingerprint or set(known) != {f.relpath for f in plan.files}):
        return None
    recorded = fileid.read_identities(previous)
    for f in plan.files:
        entry = known[f.relpath]
        if (f.origin != "clean" or f.sha256 is None or f.sha256 != entry.get("sha256") or f.rows != entry.get("rows")
                or not fileid.same_file(recorded.get(f.relpath), f.identity)):
            return None
    outcomes = tuple(FileOutcome(f.relpath, f.origin, f.rows, f.rows, str(f.sha256), str(f.sha256), False,
                                 f.identity) for f in plan.files)
    return DatasetOutcome(plan.config.name, plan.config.kind, previous, outcomes, dict(matches.by_reason),
                          dict(matches.by_entry))


def verify_versions(con: duckdb.DuckDBPyConnection, entries: pa.Table, outcomes: Sequence[DatasetOutcome],
                    configs: Sequence[DatasetConfig], match: MatchResult, link_through_events: bool,
                    held: pa.Table | None = None, table_schema: bool = False) -> Verification:
    """Re-read the rewritten outputs and apply §3 again, with every entry and the devices linked from
    the inputs. Files carried over unchanged (links to, or copies of, inputs this run's match scanned
    against every entry and found clean) are not matched again: the same bytes through the same
    matcher cannot differ (`publish_version` checks they are still those bytes); their row counts are
    still checked. A first scan (`may_match`) proves most outputs clean in one pass; only when it
    finds a candidate row is §3 applied in full, for the exact counts. Rows an active retention hold keeps (`held`) are not matches. `table_schema`: the
    outputs are a table format's files (DatasetInput.table_schema)."""
    by_name = {c.name: c for c in configs}
    inputs = [DatasetInput(by_name[o.name], {f.relpath: o.version / f.relpath for f in o.files if f.rewritten},
                           table_schema=table_schema) for o in outcomes]
    if may_match(con, entries, inputs, match.linked_devices):  # one scan; the exact match only if it finds any row
        again = find_matches(con, entries, inputs, link_through_events, extra_linked=match.linked_devices, held=held)
    else:
        again = MatchResult({ds.config.name: DatasetMatches() for ds in inputs}, match.linked_devices)
    by_entry: dict[str, int] = {}
    for m in again.datasets.values():
        for bid, n in m.by_entry.items():
            by_entry[bid] = by_entry.get(bid, 0) + n
    for o in outcomes:
        for f in o.files:
            actual = storage.num_rows(o.version / f.relpath)
            if actual != f.rows_out:
                raise AssertionError(f"{o.version / f.relpath}: {actual} rows on disk, {f.rows_out} expected")
    return Verification(
        files_checked=sum(len(o.files) for o in outcomes),
        rows_checked=sum(f.rows_out for o in outcomes for f in o.files),
        matches=again.rows_removed,
        matches_by_entry=by_entry,
        files_reread=sum(len(ds.files) for ds in inputs),
        rows_reread=sum(f.rows_out for o in outcomes for f in o.files if f.rewritten),
    )


def publish_version(config: DatasetConfig, outcome: DatasetOutcome) -> None:
    """Check every file of the new version still is what this run wrote, point readers at it in one
    rename, delete superseded versions (and the run's copies of raw files), then record the files'
    identities for the next run (`pipelines.datasets.fileid`)."""
    for f in outcome.files:
        if f.identity is not None and not fileid.same_file(fileid.stat_identity(outcome.version / f.relpath), f.identity):
            raise ChangedWhileRead(f"{outcome.version / f.relpath}: changed after this run wrote it (not by "
                                   "gdpr-sweep); nothing was published; run the sweep again")
    try:
        storage.switch_version(config.path, outcome.version)
    except OSError as exc:
        raise storage_error(exc, config.path, "publishing the new version at") from None
    try:
        storage.remove_stale_versions(config.path)
        fileid.record_identities(outcome.version, [f.relpath for f in outcome.files])
    except OSError as exc:
        raise storage_error(exc, storage.versions_dir(config.path), "tidying",
                            "the new version is published; the next run tidies up") from None


def delete_consumed_raw(plan: DatasetPlan) -> list[str]:
    """Delete the raw snapshot files the new version holds (`pipelines.datasets.settle.settle_raw`); return
    their paths. A file the file system refuses to delete raises StorageError."""
    settled = settle_raw(plan, delete=True)
    if settled.failures:
        raise StorageError(settled.failures[0])
    return list(settled.deleted)


def raw_still_held(config: DatasetConfig) -> list[str]:
    """Raw snapshot files still present in the dataset's source folder."""
    if config.source is None:
        return []
    return [str(config.source / rel) for rel in storage.list_parquet(config.source)]


def snapshot_files(config: DatasetConfig) -> list[Path]:
    """A local dataset's snapshot: new raw files in `source`, then the current cleaned files (same name:
    raw wins)."""
    files: dict[str, Path] = {}
    for folder in (config.source, config.path):
        if folder is not None:
            for rel in storage.list_parquet(folder):
                files.setdefault(rel, folder / rel)
    return [files[rel] for rel in sorted(files)]


MANIFEST_CARRIED = ("ingested_batches", "match_fingerprint")
"""Manifest keys a targeted run's new version inherits from the one it replaces: removing rows, or
adding a batch verified against the whole blacklist, keeps the earlier verification valid."""


def restore_manifest(version: Path, previous: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """After `write_version`: files carried over keep the blacklist version they were last checked
    against (a targeted run checks one entry or one batch, not the whole blacklist), and keys such
    as `ingested_batches` are inherited. `extra` is merged in last."""
    path = version / storage.MANIFEST_NAME
    manifest = storage.read_manifest(version)
    old_files = previous.get("files", {})
    for rel, entry in manifest.get("files", {}).items():
        if rel in old_files and "blacklist_version" in old_files[rel]:
            entry["blacklist_version"] = old_files[rel]["blacklist_version"]
    for key in MANIFEST_CARRIED:
        if key in previous:
            manifest[key] = previous[key]
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(manifest.get(key), dict):
            manifest[key] = {**manifest[key], **value}
        else:
            manifest[key] = value
    storage.write_json_atomic(path, manifest)
