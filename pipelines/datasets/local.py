"""A local folder of Parquet files (the default kind): versioned by the sweep, readers follow a symlink
to the current version (pipelines/datasets/sweep.py and storage.py; docs/decisions/0253)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import duckdb
import numpy as np
import pyarrow as pa

from pipelines.core.model import (
    DatasetMatches,
    DatasetOutcome,
    DatasetPlan,
    FileOutcome,
    FilePlan,
    MatchResult,
    Verification,
)
from pipelines.datasets import storage
from pipelines.datasets.base import Dataset
from pipelines.datasets.settle import RawSettlement, settle_raw
from pipelines.datasets.sweep import (
    finish_version,
    plan_dataset,
    publish_version,
    quiet_outcome,
    restore_manifest,
    snapshot_files,
    verify_versions,
    write_file,
    write_version,
)


class LocalFolder(Dataset):
    """`path` is a local folder (a symlink to the current version, `_gdpr_sweep_versions/<run_id>/`)."""

    kind_name: ClassVar[str] = "local folder"
    storage_label: ClassVar[str] = "local"
    per_file: ClassVar[bool] = True
    takes_batches: ClassVar[bool] = True

    def local_folders(self) -> tuple[Path, ...]:
        return (self.config.path, storage.current_version(self.config.path) or self.config.path)

    def plan(self, fingerprint: str | None = None) -> DatasetPlan:
        return plan_dataset(self.config, fingerprint)

    def current(self) -> DatasetPlan:
        previous = storage.current_version(self.config.path)
        manifest = storage.read_manifest(previous)
        known = manifest.get("files", {})
        files: list[FilePlan] = []
        if previous is not None:
            for rel in storage.list_parquet(previous):
                entry = known.get(rel, {})
                files.append(FilePlan(rel, previous / rel, "clean", storage.num_rows(previous / rel),
                                      entry.get("sha256"), entry.get("source")))
        return DatasetPlan(self.config, tuple(files), previous, manifest)

    def command_files(self) -> list[Path]:
        return snapshot_files(self.config)

    def keep_current(self, plan: DatasetPlan, matches: DatasetMatches,
                     fingerprint: str | None = None) -> DatasetOutcome | None:
        """Quiet when every file is the current version's, unchanged since it was published (its
        identity and checksum the ones recorded), the version was written under `fingerprint`, and no
        row matched: then readers keep it as it is (no new folder, manifest or symlink switch)."""
        return quiet_outcome(plan, matches, fingerprint)

    def start_version(self, plan: DatasetPlan, run_id: str) -> None:
        storage.new_version(self.config.path, run_id)

    def write_files(self, plan: DatasetPlan, relpaths: Sequence[str], drops: dict[str, np.ndarray],
                    run_id: str) -> list[FileOutcome]:
        """Two at a time (pyarrow and hashlib release the GIL: on 2 cores this halves the rewrite's
        wall time; docs/benchmarks.md, "Sweep")."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = list(pool.map(lambda rel: write_file(plan, rel, drops.get(rel), run_id), relpaths))
        # durable on the machine that wrote them (a Dask worker may be another one)
        storage.sync_folder(storage.versions_dir(self.config.path) / run_id)
        return outcomes

    def finish(self, plan: DatasetPlan, outcomes: Sequence[FileOutcome], matches: DatasetMatches, run_id: str,
               blacklist_version: int, fingerprint: str | None = None) -> DatasetOutcome:
        version = storage.versions_dir(self.config.path) / run_id
        return finish_version(plan, version, outcomes, matches, run_id, blacklist_version, fingerprint)

    def purge_targeted(self, plan: DatasetPlan, matches: DatasetMatches, run_id: str) -> DatasetOutcome:
        """A new version: files with matches rewritten, the others hard-linked; the manifest keeps the
        blacklist versions the files were verified against."""
        previous = plan.previous_manifest
        outcome = write_version(plan, matches, run_id, int(previous.get("blacklist_version", 0)))
        restore_manifest(outcome.version, previous)
        return outcome

    def verify(self, con: duckdb.DuckDBPyConnection, entries: pa.Table, piece: DatasetOutcome, linked: pa.Table,
               held: pa.Table | None = None) -> Verification:
        return verify_versions(con, entries, [piece], [self.config], MatchResult({}, linked),
                               self.settings.link_devices_through_events, held)

    def publish(self, plan: DatasetPlan, outcome: DatasetOutcome, unscoped_emails: Sequence[str]) -> None:
        if plan.previous_version is not None and outcome.version == plan.previous_version:
            return  # a quiet night (keep_current): the current version stays
        publish_version(self.config, outcome)

    def discard_unpublished(self) -> None:
        storage.remove_stale_versions(self.config.path)

    def settle_raw(self, plan: DatasetPlan, outcome: DatasetOutcome, delete: bool) -> RawSettlement:
        return settle_raw(plan, delete)
