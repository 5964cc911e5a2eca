"""An S3-compatible prefix of Parquet objects: each object with rows to drop is replaced at its own key
(pipelines/datasets/s3dataset.py, s3publish.py; docs/decisions/0251 and 0253)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import duckdb
import numpy as np
import pyarrow as pa

from pipelines.core.model import (
    DatasetMatches,
    DatasetOutcome,
    DatasetPlan,
    FileOutcome,
    MatchResult,
    Verification,
)
from pipelines.datasets import objectstore, s3dataset, s3publish
from pipelines.datasets.base import Dataset
from pipelines.datasets.settle import RawSettlement


class S3Prefix(Dataset):
    """`path = "s3://bucket/prefix"`: objects stay at their keys; the sweep's state is one object beside them."""

    kind_name: ClassVar[str] = "S3 prefix"
    storage_label: ClassVar[str] = "s3"
    per_file: ClassVar[bool] = True

    @property
    def filesystem(self) -> Any:
        objectstore.configure(self.settings.s3)
        return objectstore.filesystem(self.settings.s3)

    @property
    def remote(self) -> bool:
        return True

    def prefetch(self) -> None:
        objectstore.cache_listing(self.filesystem, [u for u in (self.config.url, self.config.source_url) if u])

    def plan(self, fingerprint: str | None = None) -> DatasetPlan:
        return s3dataset.plan(self.config, self.filesystem, fingerprint)

    def current(self) -> DatasetPlan:
        return s3dataset.plan(dataclasses.replace(self.config, source=None, source_url=None), self.filesystem)

    def write_files(self, plan: DatasetPlan, relpaths: Sequence[str], drops: dict[str, np.ndarray],
                    run_id: str) -> list[FileOutcome]:
        return list(s3dataset.write_files(self.filesystem, plan, relpaths, drops, run_id, self.settings.work_dir))

    def finish(self, plan: DatasetPlan, outcomes: Sequence[FileOutcome], matches: DatasetMatches, run_id: str,
               blacklist_version: int, fingerprint: str | None = None) -> DatasetOutcome:
        return s3dataset.finish(self.filesystem, plan, outcomes, matches,  # type: ignore[arg-type]
                                run_id, blacklist_version, fingerprint)

    def purge_targeted(self, plan: DatasetPlan, matches: DatasetMatches, run_id: str) -> DatasetOutcome:
        """Objects with matches replaced at their keys; the state keeps each object's verified
        blacklist version, the match fingerprint and the raw objects already taken in."""
        old = plan.previous_manifest.get("state", {})
        outcome = self.purge(plan, matches, run_id, 0, old.get("match_fingerprint"))
        assert isinstance(outcome, s3dataset.S3Outcome)
        known = old.get("files", {})
        for rel, entry in outcome.state["files"].items():
            if "verified" in known.get(rel, {}):
                entry["verified"] = known[rel]["verified"]
            else:
                entry.pop("verified", None)  # never verified: the next sweep matches it against every entry
        outcome.state["sources"] = dict(old.get("sources", {}))
        return outcome

    def verify(self, con: duckdb.DuckDBPyConnection, entries: pa.Table, piece: DatasetOutcome, linked: pa.Table,
               held: pa.Table | None = None) -> Verification:
        return s3dataset.verify(con, self.filesystem, self.config, entries, piece, MatchResult({}, linked),
                                self.settings.link_devices_through_events, self.settings.work_dir, held)

    def publish(self, plan: DatasetPlan, outcome: DatasetOutcome, unscoped_emails: Sequence[str]) -> None:
        assert isinstance(outcome, s3dataset.S3Outcome)
        s3publish.publish(self.filesystem, plan, outcome, outcome.run_id)

    def settle_raw(self, plan: DatasetPlan, outcome: DatasetOutcome, delete: bool) -> RawSettlement:
        assert isinstance(outcome, s3dataset.S3Outcome)
        deleted = s3publish.delete_consumed_raw(self.filesystem, plan, outcome.state) if delete else []
        return RawSettlement(tuple(deleted), ())
