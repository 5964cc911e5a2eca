"""After a verified S3 sweep (pipelines/datasets/s3dataset.py): delete what the replaced objects superseded,
retire the layout of before 2026-12-06, record the state, and delete consumed raw snapshots.

Order matters for crash safety (docs/decisions/0251-s3-plain-keys-conditional-writes.md): superseded
object versions are deleted before the state is written, so a run killed in between leaves objects the
state does not know; the next run finds them carrying the sweep's marker and deletes what they
superseded then. Raw snapshots are deleted last, only once the state records them as taken in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.core.errors import SweepError
from pipelines.core.model import DatasetPlan
from pipelines.datasets import objectstore
from pipelines.datasets.objectstore import Changed, Url
from pipelines.datasets.s3dataset import (
    LEGACY_CURRENT,
    LEGACY_VERSIONS,
    STATE,
    ObjectOutcome,
    ObjectPlan,
    S3Outcome,
)

if TYPE_CHECKING:  # s3fs and its botocore tree cost ~0.9 s to import: loaded where S3 is opened
    import s3fs



@dataclass(frozen=True)
class Published:
    old_versions_deleted: int
    legacy_objects_deleted: int
    state_written: bool


def publish(fs: s3fs.S3FileSystem, plan: DatasetPlan, outcome: S3Outcome, run_id: str) -> Published:
    root = Url(plan.config.url or "")
    old_versions = 0
    if objectstore.versioned(fs, root.bucket):
        doomed = []
        for o in outcome.files:
            if isinstance(o, ObjectOutcome) and o.written and o.version_out:
                doomed += objectstore.superseded(fs, root / o.relpath, o.version_out)
        for f in plan.files:
            if isinstance(f, ObjectPlan) and f.recovered_version:
                doomed += objectstore.superseded(fs, root / f.relpath, f.recovered_version)
        old_versions = objectstore.delete_versions(fs, root.bucket, doomed)
    legacy = 0
    if plan.previous_manifest.get("legacy"):
        # The pointer first: a reader that still follows it finds no manifest rather than a half-deleted version.
        legacy = objectstore.purge_keys(fs, root, [LEGACY_CURRENT])
        legacy += objectstore.purge_keys(fs, root, [LEGACY_VERSIONS + "/"])
    written = write_state(fs, root, plan, outcome.state, run_id)
    return Published(old_versions, legacy, written)


def write_state(fs: s3fs.S3FileSystem, root: Url, plan: DatasetPlan, state: dict[str, Any], run_id: str) -> bool:
    """PUT the state if it changed (a quiet night writes nothing), conditional on the state this run read."""
    if json.loads(json.dumps(state)) == plan.previous_manifest.get("state"):
        return False
    data = (json.dumps(state, indent=1, sort_keys=True) + "\n").encode()
    try:
        objectstore.put(fs, root / STATE, data, plan.previous_manifest.get("state_etag"), run_id)
    except Changed:
        raise SweepError(f"{root / STATE}: written by another sweep during this run (two runs on one "
                         "dataset?); the objects are cleaned, the next run records them") from None
    return True


def delete_consumed_raw(fs: s3fs.S3FileSystem, plan: DatasetPlan, state: dict[str, Any]) -> list[str]:
    """Delete the raw snapshots the dataset holds (taken in by this run or an earlier one), each only if
    it is still the object that was read (same ETag); return their URLs."""
    if not plan.config.source_url:
        return []
    deleted = []
    for rel, etag in sorted(state.get("sources", {}).items()):
        url = Url(plan.config.source_url) / rel
        info = objectstore.head(fs, url)
        if info is None or info["ETag"] != etag:
            continue  # changed since it was read: the next run takes it in
        if objectstore.delete(fs, url, etag, info.get("VersionId")):
            deleted.append(str(url))
    return deleted
