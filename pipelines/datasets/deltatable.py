"""A Delta Lake table, local or on S3 (`format = "delta"`): purged by one merge-delete commit of the
table's own, then vacuumed and its log cleaned (pipelines/datasets/delta.py; docs/decisions/0009, 0253)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import duckdb
import pyarrow as pa

from pipelines.core.match import connect
from pipelines.core.model import DatasetMatches, DatasetOutcome, DatasetPlan, MatchResult, Verification
from pipelines.datasets import delta, objectstore
from pipelines.datasets.base import Dataset
from pipelines.datasets.sweep import verify_versions


class DeltaDataset(Dataset):
    """`format = "delta"`: `path` is the table's location (a folder, or `s3://bucket/prefix`)."""

    kind_name: ClassVar[str] = "Delta table"
    storage_label: ClassVar[str] = "delta"
    per_file: ClassVar[bool] = False
    takes_raw: ClassVar[bool] = False

    def _storage_options(self) -> dict[str, str] | None:
        return objectstore.storage_options(self.settings.s3) if self.remote else None

    def plan(self, fingerprint: str | None = None) -> DatasetPlan:
        return delta.plan_table(self.config, self._storage_options(), self.filesystem)

    def current(self) -> DatasetPlan:
        return self.plan()

    def purge_table(self, plan: DatasetPlan, matches: DatasetMatches, run_id: str,
                    blacklist_version: int) -> DatasetOutcome:
        """One merge-delete commit for the whole table."""
        with connect(self.settings.duckdb_memory_limit) as con:
            if self.remote:
                objectstore.register(con, self.settings.s3)
            return delta.purge_table(con, plan, matches, run_id, blacklist_version, self._storage_options(),
                                     self.filesystem)

    def verify(self, con: duckdb.DuckDBPyConnection, entries: pa.Table, piece: DatasetOutcome, linked: pa.Table,
               held: pa.Table | None = None) -> Verification:
        return verify_versions(con, entries, [piece], [self.config], MatchResult({}, linked),
                               self.settings.link_devices_through_events, held, table_schema=True)

    def publish(self, plan: DatasetPlan, outcome: DatasetOutcome, unscoped_emails: Sequence[str]) -> None:
        """Vacuum, checkpoint, clean the log, and prove no unscoped email is left in it."""
        assert isinstance(outcome, delta.DeltaOutcome)
        delta.finish_purge(self.config, outcome, unscoped_emails, self._storage_options(), self.filesystem)
