"""Settling a published dataset's raw snapshot files (local folders; S3: `pipelines.datasets.s3publish`).

After a version is published, the raw files it holds are deleted (`delete_raw`) only while each is
still the file the run read (its identity, `pipelines.datasets.fileid`); one that changed since is kept and
reported for the next run to take in. A file the file system refuses to delete (permission denied,
read-only) is kept too: the run still writes its report, then ends with one line naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.core.errors import storage_error
from pipelines.core.model import FileChange
from pipelines.datasets import fileid

if TYPE_CHECKING:
    from pipelines.core.model import DatasetPlan


@dataclass(frozen=True)
class RawSettlement:
    deleted: tuple[str, ...]
    """Raw files deleted: they were exactly the bytes the run read and replaced."""
    changes: tuple[FileChange, ...]
    """Raw files that changed since the run read them (kept, not published)."""
    failures: tuple[str, ...] = ()
    """One-line messages for raw files the file system refused to delete (kept)."""


def settle_raw(plan: DatasetPlan, delete: bool) -> RawSettlement:
    """Delete (with `delete`) the raw snapshot files the new version holds, taken in by this run or
    an earlier one, each only if it still is the file that was read; report the others."""
    deleted: list[str] = []
    failures: list[str] = []
    changes = {c.path: c for c in plan.changes if c.what == "changed since read"}
    for f in plan.files:
        if f.source_signature is None or plan.config.source is None or (f.origin != "source" and not delete):
            continue
        raw = f.raw_path or plan.config.source / f.relpath
        result = ""
        if delete:
            try:
                result = fileid.delete_if_unchanged(raw, f.source_signature)
            except OSError as exc:
                failures.append(str(storage_error(exc, raw, "deleting raw snapshot file",
                                                  "the new version is published and reported; this raw file is kept")))
        elif raw.exists() and not fileid.same_file(fileid.stat_identity(raw), f.source_signature):
            result = "changed"
        if result == "deleted":
            deleted.append(str(raw))
        elif result == "changed" and str(raw) not in changes:
            changes[str(raw)] = FileChange(plan.config.name, str(raw), "changed since read",
                                           "not deleted, not published: it changed after this run read it; "
                                           "the next run takes it in")
    return RawSettlement(tuple(deleted), tuple(changes.values()), tuple(failures))
