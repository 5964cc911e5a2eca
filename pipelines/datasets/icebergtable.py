"""An Iceberg table, local or on S3 (`format = "iceberg"`): purged by one copy-on-write commit, then its
history expired, unreferenced files deleted and the location searched (pipelines/datasets/iceberg.py;
docs/decisions/0281-iceberg-tables.md, 0253)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import duckdb
import fsspec
import pyarrow as pa

from pipelines.config.settings import S3Settings
from pipelines.core.model import DatasetMatches, DatasetOutcome, DatasetPlan, MatchResult, Verification
from pipelines.datasets import iceberg, objectstore
from pipelines.datasets.base import Dataset
from pipelines.datasets.sweep import verify_versions


class IcebergDataset(Dataset):
    """`format = "iceberg"`: `path` is the table's location, checked against its catalog."""

    kind_name: ClassVar[str] = "Iceberg table"
    storage_label: ClassVar[str] = "iceberg"
    per_file: ClassVar[bool] = False
    takes_raw: ClassVar[bool] = False

    def _s3(self) -> S3Settings | None:
        if not self.remote:
            return None
        objectstore.configure(self.settings.s3)
        return self.settings.s3

    def _fs(self) -> Any:
        return self.filesystem or fsspec.filesystem("file")

    def plan(self, fingerprint: str | None = None) -> DatasetPlan:
        return iceberg.plan_table(self.config, self._s3())

    def current(self) -> DatasetPlan:
        return self.plan()

    def purge_table(self, plan: DatasetPlan, matches: DatasetMatches, run_id: str,
                    blacklist_version: int) -> DatasetOutcome:
        return iceberg.purge_table(plan, matches, run_id, self._s3(), self._fs())

    def verify(self, con: duckdb.DuckDBPyConnection, entries: pa.Table, piece: DatasetOutcome, linked: pa.Table,
               held: pa.Table | None = None) -> Verification:
        return verify_versions(con, entries, [piece], [self.config], MatchResult({}, linked),
                               self.settings.link_devices_through_events, held, table_schema=True)

    def publish(self, plan: DatasetPlan, outcome: DatasetOutcome, unscoped_emails: Sequence[str]) -> None:
        """Expire older snapshots, delete unreferenced files, search the whole location."""
        iceberg.finish_purge(self.config, outcome, unscoped_emails, self._s3(), self._fs())
