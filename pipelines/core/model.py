"""The types every stage passes around: blacklist entries as the sweep sees them, a dataset's files
for a run, what matched, what was planned and written, and what verification found.

A leaf: it imports only the configuration model, so any module can name these types without importing
the code that produces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.config.settings import DatasetConfig

NEVER_VERIFIED = -1
"""The blacklist version of a file never verified (incremental sweeps, decision 0007)."""


@dataclass(frozen=True)
class Entry:
    """A blacklist entry as the sweep sees it. `email` is normalised; `scope` None means every scope."""

    blacklist_id: str
    email: str | None = None
    user_id: str | None = None
    scope: str | None = None


@dataclass(frozen=True)
class DatasetInput:
    """One dataset's files for this run, by relative path.

    `verified` maps a relative path to the blacklist version its file was last verified against
    (incremental sweeps, docs/decisions/0007-incremental-sweeps.md): only entries added after that
    version can match it by rules 1 and 2. Files not listed are checked against every entry.
    """

    config: DatasetConfig
    files: dict[str, Path]
    verified: dict[str, int] = field(default_factory=dict)
    table_schema: bool = False
    """True when the dataset's schema is a table format's own (Delta's log, Iceberg's metadata): its
    writers may vary Arrow view types per file, so the files are not compared with each other."""

    def verified_list(self) -> list[int]:
        return [self.verified.get(rel, NEVER_VERIFIED) for rel in self.files]


@dataclass(frozen=True)
class DatasetMatches:
    drops: dict[str, np.ndarray] = field(default_factory=dict)
    """Relative path -> sorted 0-based row numbers to remove."""
    by_reason: dict[str, int] = field(default_factory=dict)
    """Rows removed per reason; each row counted once, under its first reason (email, user_id, linked_device)."""
    by_entry: dict[str, int] = field(default_factory=dict)
    """Rows removed per BlacklistId; a row matching two entries counts for both."""
    held_by_entry: dict[str, int] = field(default_factory=dict)
    """Rows kept under a retention hold per BlacklistId (pipelines/core/holds.py); not in `drops`."""

    @property
    def rows_removed(self) -> int:
        return sum(len(rows) for rows in self.drops.values())


@dataclass(frozen=True)
class MatchResult:
    datasets: dict[str, DatasetMatches]
    linked_devices: pa.Table
    """(device, scope, bid) linked by rule 3; kept to re-check outputs in verification."""
    identity_hits: pa.Table | None = None
    """The rows rules 1 and 2 matched (HITS_SCHEMA): for a second pass to reuse (`links_only`), and for
    the links they make to be remembered (pipelines/core/links.py)."""

    @property
    def rows_removed(self) -> int:
        return sum(m.rows_removed for m in self.datasets.values())


@dataclass(frozen=True)
class FileChange:
    """A file that did not keep the identity the run read it with, or a cleaned file whose content
    no longer matched what the tool recorded. Paths and checksums only."""

    dataset: str
    path: str
    what: str
    """`changed since read` (a raw snapshot) or `changed outside the tool` (a cleaned file)."""
    action: str
    """What the run did about it, in words for the report."""

    def as_dict(self) -> dict[str, str]:
        return {"dataset": self.dataset, "path": self.path, "what": self.what, "action": self.action}


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
    """The raw snapshot file's identity when it was taken in (`pipelines.datasets.fileid`), from the manifest
    for a clean file."""
    verified: int | None = None
    """Blacklist version this (clean) file was verified against (recorded; every run still matches
    every file against every entry, §5)."""
    identity: dict[str, int] | None = None
    """The input file's identity when planned: checked again before it is linked or rewritten."""
    raw_path: Path | None = None
    """For `source`: the raw snapshot file; `input_path` is the run's own copy of it."""


@dataclass(frozen=True)
class DatasetPlan:
    config: DatasetConfig
    files: tuple[FilePlan, ...]
    previous_version: Path | None
    previous_manifest: dict[str, Any] = field(default_factory=dict)
    changes: tuple[FileChange, ...] = ()
    """Raw files that vanished or changed while being taken in, and cleaned files changed outside the tool."""
    table_schema: bool = False
    """See `DatasetInput.table_schema`; set by a table kind's plan."""

    def as_input(self, blacklist_version: int | None = None) -> DatasetInput:
        """The files to match, each against every entry (§5: every cleaned file is checked against
        the whole blacklist on every run; docs/decisions/0201-integrity-of-inputs.md). It costs the one
        scan of the identity columns pass 1 makes anyway. `blacklist_version` is accepted for callers
        of the incremental form and ignored."""
        return DatasetInput(self.config, {f.relpath: f.input_path for f in self.files},
                            table_schema=self.table_schema)

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
    identity: dict[str, int] | None = field(default=None, compare=False)
    """The output file's identity once written (local datasets): checked again before publishing."""


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

    def verifiable(self) -> DatasetOutcome:
        """What verification re-reads: these files (a table kind's outcome overrides it with the table's
        files after its purge)."""
        return self


@dataclass(frozen=True)
class Verification:
    files_checked: int
    """Every output file: rewritten ones re-read and matched again here, the others (the very bytes
    this run's match scanned against every entry and linked device, identity-checked) counted too."""
    rows_checked: int
    matches: int
    matches_by_entry: dict[str, int]
    files_reread: int = 0
    rows_reread: int = 0

    @property
    def ok(self) -> bool:
        return self.matches == 0
