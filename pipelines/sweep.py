"""The sweep's steps, pure functions the flow wires together: plan, purge, verify, publish.

Extract: `plan_dataset` picks each file's input (a new raw snapshot, or the current cleaned file).
Match: `pipelines.match.find_matches`. Purge: `write_version` writes a complete new version.
Verify: `verify_versions` re-reads the outputs. Publish: `publish_version` swaps it in atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from pipelines import storage
from pipelines.errors import InputError
from pipelines.identity import NORMALISATION
from pipelines.match import DatasetInput, DatasetMatches, MatchResult, check_files, find_matches
from pipelines.settings import DatasetConfig


@dataclass(frozen=True)
class FilePlan:
    relpath: str
    input_path: Path
    origin: str
    """`source` (a new or changed raw snapshot file) or `clean` (the current cleaned file)."""
    rows: int
    sha256: str | None
    """Known checksum of the input (from the manifest), or None when it must be computed."""
    source_signature: dict[str, int] | None = None
    verified: int | None = None
    """Blacklist version this (clean) file was verified against, when an incremental sweep may rely on it."""


@dataclass(frozen=True)
class DatasetPlan:
    config: DatasetConfig
    files: tuple[FilePlan, ...]
    previous_version: Path | None
    previous_manifest: dict[str, Any] = field(default_factory=dict)

    def as_input(self, blacklist_version: int | None = None) -> DatasetInput:
        """The files to match. With `blacklist_version`, clean files verified by an earlier sweep are
        matched only against entries added since (docs/decisions/0007-incremental-sweeps.md); a
        registry whose version went backwards (replaced or restored) gets a full match."""
        verified = {f.relpath: f.verified for f in self.files if f.verified is not None}
        if blacklist_version is None or any(v > blacklist_version for v in verified.values()):
            verified = {}
        return DatasetInput(self.config, {f.relpath: f.input_path for f in self.files}, verified)

    @property
    def rows_in(self) -> int:
        return sum(f.rows for f in self.files)


@dataclass(frozen=True)
class FileOutcome:
    relpath: str
    origin: str
    rows_in: int
    rows_out: int
    sha256_in: str
    sha256_out: str
    rewritten: bool


@dataclass(frozen=True)
class DatasetOutcome:
    """What a sweep did to one dataset. Rows in = rows out + rows removed, checked on creation."""

    name: str
    kind: str
    version: Path
    files: tuple[FileOutcome, ...]
    by_reason: dict[str, int]
    by_entry: dict[str, int]

    @property
    def rows_in(self) -> int:
        return sum(f.rows_in for f in self.files)

    @property
    def rows_out(self) -> int:
        return sum(f.rows_out for f in self.files)

    @property
    def rows_removed(self) -> int:
        return sum(self.by_reason.values())

    def __post_init__(self) -> None:
        if self.rows_in != self.rows_out + self.rows_removed:
            raise AssertionError(
                f"dataset {self.name!r}: rows in {self.rows_in} != out {self.rows_out} + removed {self.rows_removed}")


def source_signature(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def match_fingerprint(configs: Sequence[DatasetConfig], link_through_events: bool) -> str:
    """What a verification depended on besides the entries: every dataset's identity columns and the
    linking switch, and the identity normalisation (a new one re-matches every file once). A sweep
    relies on an earlier verification only when this is unchanged."""
    shape = {"datasets": sorted([c.name, c.kind, c.identity_columns] for c in configs),
             "link_devices_through_events": link_through_events, "normalisation": NORMALISATION}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


def plan_dataset(config: DatasetConfig, fingerprint: str | None = None) -> DatasetPlan:
    """Choose each file's input: a raw snapshot file that is new or changed since it was last taken
    in, otherwise the current cleaned file.

    With `fingerprint` (`match_fingerprint`) equal to the one the current version was written with,
    clean files carry the blacklist version they were verified against, for an incremental sweep.
    """
    previous = storage.current_version(config.path)
    manifest = storage.read_manifest(previous)
    known = manifest.get("files", {})
    incremental = fingerprint is not None and manifest.get("match_fingerprint") == fingerprint
    files: dict[str, FilePlan] = {}
    if previous is not None:
        for rel in storage.list_parquet(previous):
            entry = known.get(rel, {})
            rows = entry.get("rows")
            verified = entry.get("blacklist_version") if incremental and rows is not None else None
            files[rel] = FilePlan(rel, previous / rel, "clean",
                                  rows if rows is not None else storage.num_rows(previous / rel),
                                  entry.get("sha256"), entry.get("source"), verified)
    if config.source is not None:
        for rel in storage.list_parquet(config.source):
            path = config.source / rel
            signature = source_signature(path)
            if rel in files and files[rel].source_signature == signature:
                continue
            files[rel] = FilePlan(rel, path, "source", storage.num_rows(path), None, signature)
    if previous is None and not files:
        # Nothing to sweep and nothing swept before: a wrong `path`/`source` more likely than a real lake.
        where = f"no Parquet files in {config.source} and " if config.source is not None else ""
        raise InputError(f"dataset {config.name!r}: {where}no cleaned version at {config.path}; "
                         "check 'source' and 'path' in the configuration")
    check_files(config, [files[r].input_path for r in sorted(files)])
    return DatasetPlan(config, tuple(files[r] for r in sorted(files)), previous, manifest)


def _write_file(f: FilePlan, out: Path, drop: np.ndarray | None) -> FileOutcome:
    sha_in = f.sha256 or storage.sha256_file(f.input_path)
    if drop is not None and len(drop):
        written = storage.rewrite_without_rows(f.input_path, out, drop)
        if written.rows_in != f.rows:
            raise AssertionError(f"{f.input_path}: read {written.rows_in} rows, metadata says {f.rows}")
        return FileOutcome(f.relpath, f.origin, f.rows, written.rows_out, sha_in, storage.sha256_file(out), True)
    storage.link_or_copy(f.input_path, out)
    return FileOutcome(f.relpath, f.origin, f.rows, f.rows, sha_in, sha_in, False)


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
    storage.write_json_atomic(version / storage.MANIFEST_NAME, {
        "manifest_version": 1, "dataset": plan.config.name, "run_id": run_id,
        "blacklist_version": blacklist_version, "match_fingerprint": fingerprint, "files": manifest_files,
        # batches the ingest guard took in (pipelines/ingest.py): kept so a re-sent batch stays a duplicate
        "ingested_batches": plan.previous_manifest.get("ingested_batches", {}),
    })
    return DatasetOutcome(plan.config.name, plan.config.kind, version, tuple(outcomes),
                          dict(matches.by_reason), dict(matches.by_entry))


@dataclass(frozen=True)
class Verification:
    files_checked: int
    rows_checked: int
    matches: int
    matches_by_entry: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.matches == 0


def verify_versions(con: duckdb.DuckDBPyConnection, entries: pa.Table, outcomes: Sequence[DatasetOutcome],
                    configs: Sequence[DatasetConfig], match: MatchResult, link_through_events: bool) -> Verification:
    """Re-read the rewritten outputs and apply §3 again, with every entry and the devices linked from
    the inputs. Files carried over unchanged (hard links to inputs this run's match scanned and found
    clean) are not matched again: the same bytes through the same matcher cannot differ; their row
    counts are still checked."""
    by_name = {c.name: c for c in configs}
    inputs = [DatasetInput(by_name[o.name], {f.relpath: o.version / f.relpath for f in o.files if f.rewritten})
              for o in outcomes]
    again = find_matches(con, entries, inputs, link_through_events, extra_linked=match.linked_devices)
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
        files_checked=sum(len(ds.files) for ds in inputs),
        rows_checked=sum(f.rows_out for o in outcomes for f in o.files if f.rewritten),
        matches=again.rows_removed,
        matches_by_entry=by_entry,
    )


def publish_version(config: DatasetConfig, outcome: DatasetOutcome) -> None:
    """Point readers at the new version in one rename, then delete superseded versions."""
    storage.switch_version(config.path, outcome.version)
    storage.remove_stale_versions(config.path)


def delete_consumed_raw(plan: DatasetPlan) -> list[str]:
    """Delete the raw snapshot files the new version holds: taken in by this run, or by an earlier
    run and unchanged since (same size and mtime as when taken in); return their paths."""
    deleted = []
    for f in plan.files:
        path = f.input_path if f.origin == "source" else None
        if f.origin == "clean" and plan.config.source is not None and f.source_signature is not None:
            raw = plan.config.source / f.relpath
            if raw.is_file() and source_signature(raw) == f.source_signature:
                path = raw
        if path is not None:
            os.unlink(path)
            deleted.append(str(path))
    return deleted


def raw_still_held(config: DatasetConfig) -> list[str]:
    """Raw snapshot files still present in the dataset's source folder."""
    if config.source is None:
        return []
    return [str(config.source / rel) for rel in storage.list_parquet(config.source)]
