"""The sweep's steps, pure functions the flow wires together: plan, purge, verify, publish.

Extract: `plan_dataset` picks each file's input (a new raw snapshot, or the current cleaned file).
Match: `pipelines.match.find_matches`. Purge: `write_version` writes a complete new version.
Verify: `verify_versions` re-reads the outputs. Publish: `publish_version` swaps it in atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines import storage
from pipelines.match import DatasetInput, DatasetMatches, MatchResult, find_matches
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


@dataclass(frozen=True)
class DatasetPlan:
    config: DatasetConfig
    files: tuple[FilePlan, ...]
    previous_version: Path | None
    previous_manifest: dict[str, Any] = field(default_factory=dict)

    def as_input(self) -> DatasetInput:
        return DatasetInput(self.config, {f.relpath: f.input_path for f in self.files})

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


def plan_dataset(config: DatasetConfig) -> DatasetPlan:
    """Choose each file's input: a raw snapshot file that is new or changed since it was last taken
    in, otherwise the current cleaned file."""
    previous = storage.current_version(config.path)
    manifest = storage.read_manifest(previous)
    known = manifest.get("files", {})
    files: dict[str, FilePlan] = {}
    if previous is not None:
        for rel in storage.list_parquet(previous):
            entry = known.get(rel, {})
            files[rel] = FilePlan(rel, previous / rel, "clean", storage.num_rows(previous / rel),
                                  entry.get("sha256"), entry.get("source"))
    if config.source is not None:
        for rel in storage.list_parquet(config.source):
            path = config.source / rel
            signature = source_signature(path)
            if rel in files and files[rel].source_signature == signature:
                continue
            files[rel] = FilePlan(rel, path, "source", storage.num_rows(path), None, signature)
    return DatasetPlan(config, tuple(files[r] for r in sorted(files)), previous, manifest)


def write_version(plan: DatasetPlan, matches: DatasetMatches, run_id: str, blacklist_version: int) -> DatasetOutcome:
    """Write the dataset's complete new version: rewrite files with matches, link the others."""
    version = storage.new_version(plan.config.path, run_id)
    outcomes = []
    manifest_files = {}
    for f in plan.files:
        out = version / f.relpath
        drop = matches.drops.get(f.relpath)
        sha_in = f.sha256 or storage.sha256_file(f.input_path)
        if drop is not None and len(drop):
            written = storage.rewrite_without_rows(f.input_path, out, drop)
            if written.rows_in != f.rows:
                raise AssertionError(f"{f.input_path}: read {written.rows_in} rows, metadata says {f.rows}")
            sha_out, rows_out, rewritten = storage.sha256_file(out), written.rows_out, True
        else:
            storage.link_or_copy(f.input_path, out)
            sha_out, rows_out, rewritten = sha_in, f.rows, False
        outcomes.append(FileOutcome(f.relpath, f.origin, f.rows, rows_out, sha_in, sha_out, rewritten))
        manifest_files[f.relpath] = {"rows": rows_out, "sha256": sha_out, "source": f.source_signature,
                                     "blacklist_version": blacklist_version}
    storage.write_json_atomic(version / storage.MANIFEST_NAME, {
        "manifest_version": 1, "dataset": plan.config.name, "run_id": run_id,
        "blacklist_version": blacklist_version, "files": manifest_files,
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
    """Re-read the written outputs and apply §3 again, with the devices linked from the inputs."""
    by_name = {c.name: c for c in configs}
    inputs = [DatasetInput(by_name[o.name], {f.relpath: o.version / f.relpath for f in o.files}) for o in outcomes]
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
        files_checked=sum(len(o.files) for o in outcomes),
        rows_checked=sum(o.rows_out for o in outcomes),
        matches=again.rows_removed,
        matches_by_entry=by_entry,
    )


def publish_version(config: DatasetConfig, outcome: DatasetOutcome) -> None:
    """Point readers at the new version in one rename, then delete superseded versions."""
    storage.switch_version(config.path, outcome.version)
    storage.remove_stale_versions(config.path)


def delete_consumed_raw(plan: DatasetPlan) -> list[str]:
    """Delete the raw snapshot files this run took in; return their paths."""
    deleted = []
    for f in plan.files:
        if f.origin == "source":
            os.unlink(f.input_path)
            deleted.append(str(f.input_path))
    return deleted


def raw_still_held(config: DatasetConfig) -> list[str]:
    """Raw snapshot files still present in the dataset's source folder."""
    if config.source is None:
        return []
    return [str(config.source / rel) for rel in storage.list_parquet(config.source)]
