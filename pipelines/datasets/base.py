"""The one storage interface: what the sweep, ClearUserData, ingest, verification, the residual scan and
the reports may ask of a dataset, whatever kind it is (docs/decisions/0253-storage-interface.md).

Every kind of dataset (a local folder, an S3-compatible prefix, a Delta table, an Iceberg table) is one
subclass of `Dataset` in its own module, chosen once from the configuration by
`pipelines.datasets.factory.open_dataset`. Nothing outside those modules and the factory asks which
kind it holds; a caller that needs to choose between mapping per-file tasks and one table commit reads
the capability `per_file`, not the kind.

The steps of one run, in order:

- `plan`: the files this run reads (the dataset's current files, plus raw snapshots to take in);
  `current` the same without raw snapshots (what readers see now: ClearUserData, the residual scan).
- purge, either per file (`per_file` kinds: `start_version`, `write_files` for each partition, then
  `finish`) or in one commit of the table's own (`purge_table`); `purge` does either, for callers that
  do not spread the work (ClearUserData, benchmarks).
- `verifiable` / `verify`: what verification re-reads, and the re-read of one slice of it.
- `publish`: switch readers to the new version and delete what it supersedes (a table kind also
  purges its history here, then proves no unscoped email is left anywhere under its location);
  `settle_raw` deals with the raw snapshots taken in; after a failure `discard_unpublished`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import numpy as np
import pyarrow as pa

from pipelines.config.settings import DatasetConfig, Settings
from pipelines.core.errors import ConfigError
from pipelines.core.model import DatasetMatches, DatasetOutcome, DatasetPlan, FileOutcome, Verification
from pipelines.datasets.settle import RawSettlement


class Dataset(ABC):
    """One configured dataset, bound to the settings it is reached with (`[s3]`, `work_dir`)."""

    kind_name: ClassVar[str]
    """How reports and errors name this kind (`local folder`, `S3 prefix`, `Delta table`, ...)."""
    storage_label: ClassVar[str]
    """How a certificate names the storage (`local`, `s3`, `delta`, `iceberg`; pipelines/reporting/certificate.py)."""
    per_file: ClassVar[bool]
    """True: files are rewritten one by one (a task runner may map partitions of them over workers);
    False: the whole dataset is purged by one commit of the table's own (`purge_table`)."""
    takes_raw: ClassVar[bool] = True
    """Whether raw snapshots (`source`) can be taken in; a table kind is purged in place."""
    takes_batches: ClassVar[bool] = False
    """Whether the ingest guard can add a batch to it as a new version (pipelines/operations/ingest.py)."""

    def __init__(self, config: DatasetConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.name!r})"

    def check_takes_batches(self) -> None:
        """ConfigError unless the ingest guard can add a batch to this dataset (`takes_batches`)."""
        if not self.takes_batches:
            raise ConfigError(f"dataset {self.config.name!r}: the ingest guard adds batches to local Parquet "
                              f"folders; this one is a {self.kind_name}: write the batch with your own tools and "
                              "let the nightly sweep (or ClearUserData) remove blacklisted rows")

    # -- reading ---------------------------------------------------------------------------------

    @property
    def filesystem(self) -> Any:
        """The fsspec file system the dataset's files are read through; None for local files."""
        if not self.remote:
            return None
        from pipelines.datasets import objectstore

        objectstore.configure(self.settings.s3)
        return objectstore.filesystem(self.settings.s3)

    @property
    def remote(self) -> bool:
        """Whether DuckDB needs the object store registered to read this dataset's files (an S3 location)."""
        return self.config.url is not None

    def local_folders(self) -> tuple[Path, ...]:
        """The folders on this machine the dataset occupies (its path, the version readers see); none
        for a dataset on an object store. A scan of a lake root skips them (they are searched as the dataset)."""
        return () if self.remote else (self.config.path,)

    def prefetch(self) -> None:
        """Before this dataset's files are read by a DuckDB connection (an object store lists the
        sizes and ETags of its objects once, instead of DuckDB asking per file)."""
        return None  # nothing to do for this kind

    @abstractmethod
    def plan(self, fingerprint: str | None = None) -> DatasetPlan:
        """The files this run reads: the current files, plus new or changed raw snapshots to take in."""

    @abstractmethod
    def current(self) -> DatasetPlan:
        """The files readers see now, no raw snapshot (taking those in is the nightly sweep's job)."""

    def command_files(self) -> list[Path]:
        """The files whose `Blacklisted` / `Whitelisted` rows set the blacklist status before matching
        (`event_name`, pipelines/operations/commands.py): raw snapshots, then the current files."""
        raise ConfigError(f"dataset {self.config.name!r}: 'event_name' (commands in the data) is supported for "
                          f"local Parquet folders only, not for a {self.kind_name}; remove 'event_name' or feed "
                          "the commands through the blacklist API")

    # -- purge -----------------------------------------------------------------------------------

    def keep_current(self, plan: DatasetPlan, matches: DatasetMatches,
                     fingerprint: str | None = None) -> DatasetOutcome | None:
        """A quiet night (nothing new or changed, no row matched): the current version as the outcome,
        so the run writes nothing; None when a new version must be written (per-file kinds)."""
        return None  # this kind writes nothing on a quiet night by itself

    def start_version(self, plan: DatasetPlan, run_id: str) -> None:
        """Before `write_files`: create what the partitions write into (per-file kinds)."""
        return None  # nothing to do for this kind

    def write_files(self, plan: DatasetPlan, relpaths: Sequence[str], drops: dict[str, np.ndarray],
                    run_id: str) -> list[FileOutcome]:
        """These files of the new version without their dropped rows (per-file kinds)."""
        raise NotImplementedError(f"{self.kind_name} {self.config.name!r} is purged as a whole (purge_table)")

    def finish(self, plan: DatasetPlan, outcomes: Sequence[FileOutcome], matches: DatasetMatches, run_id: str,
               blacklist_version: int, fingerprint: str | None = None) -> DatasetOutcome:
        """Record the new version once every partition is written (per-file kinds)."""
        raise NotImplementedError(f"{self.kind_name} {self.config.name!r} is purged as a whole (purge_table)")

    def purge_table(self, plan: DatasetPlan, matches: DatasetMatches, run_id: str,
                    blacklist_version: int) -> DatasetOutcome:
        """Remove the matched rows in one commit of the table's own (table kinds)."""
        raise NotImplementedError(f"{self.kind_name} {self.config.name!r} is purged file by file")

    def purge(self, plan: DatasetPlan, matches: DatasetMatches, run_id: str, blacklist_version: int,
              fingerprint: str | None = None) -> DatasetOutcome:
        """The whole purge in this process, whichever way this kind purges."""
        if not self.per_file:
            return self.purge_table(plan, matches, run_id, blacklist_version)
        self.start_version(plan, run_id)
        relpaths = [f.relpath for f in plan.files]
        written = self.write_files(plan, relpaths, {r: d for r, d in matches.drops.items() if r in set(relpaths)},
                                   run_id)
        return self.finish(plan, written, matches, run_id, blacklist_version, fingerprint)

    def purge_targeted(self, plan: DatasetPlan, matches: DatasetMatches, run_id: str) -> DatasetOutcome:
        """Remove these rows now, outside a sweep (ClearUserData): only files holding them are
        rewritten, and what earlier sweeps recorded as verified stays recorded (removing rows keeps a
        verification valid). A table kind purges as in a sweep (it records no per-file verification)."""
        return self.purge(plan, matches, run_id, 0)

    # -- verify ----------------------------------------------------------------------------------

    def verifiable(self, outcome: DatasetOutcome) -> DatasetOutcome:
        """What verification re-reads: the outcome's files (a table kind: its files after the purge)."""
        return outcome.verifiable()

    @abstractmethod
    def verify(self, con: duckdb.DuckDBPyConnection, entries: pa.Table, piece: DatasetOutcome, linked: pa.Table,
               held: pa.Table | None = None) -> Verification:
        """Re-read one slice of the output: its row counts, and §3 again on what was rewritten."""

    # -- publish ---------------------------------------------------------------------------------

    @abstractmethod
    def publish(self, plan: DatasetPlan, outcome: DatasetOutcome, unscoped_emails: Sequence[str]) -> None:
        """Switch readers to the new version and delete what it supersedes (`unscoped_emails`: what a
        table kind must prove gone from its whole location afterwards)."""

    def discard(self, outcome: DatasetOutcome) -> None:
        """Drop a written but unpublished version (verification failed); readers keep theirs."""
        self.discard_unpublished()

    def discard_unpublished(self) -> None:
        """After a failed run (under the run lock): delete what it wrote but did not publish."""
        return None  # nothing to do for this kind

    def settle_raw(self, plan: DatasetPlan, outcome: DatasetOutcome, delete: bool) -> RawSettlement:
        """After publishing: delete (with `delete`) the raw snapshots the published version holds."""
        return RawSettlement((), ())
