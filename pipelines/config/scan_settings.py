"""`[scan]`: the residual scan's settings (pipelines/assurance/residual.py, README "Residual scan").

Kept apart from `pipelines/config/settings.py` so the scan's keys are read and documented in one place; the
configuration file's model (`ConfigFile`) holds it as its `scan` table, checked like every other
table (types, unknown keys, one-line errors: pipelines/config/messages.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

from pipelines.config.types import Flag, LocalPath

ScanSchedule = Literal["every_run", "weekly", "off"]
SCHEDULES = ("every_run", "weekly", "off")
WEEKLY_HOURS = 156.0
"""`weekly`: a nightly run scans when the last scan (nightly or `gdpr-sweep scan`) is at least 6.5 days
old; the half day absorbs a schedule that starts a few minutes earlier than the week before."""


@dataclass(frozen=True, config=ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_default=True),
           kw_only=True)
class ScanSettings:
    """`[scan]`: when the nightly sweep also searches every column for blacklisted people, and where else."""

    schedule: ScanSchedule = "weekly"
    """`every_run`, `weekly` (default; see WEEKLY_HOURS) or `off`. `gdpr-sweep scan` runs it at any time."""
    fail_on_residuals: Flag = False
    """true: a finding fails the run (exit 1, flow run Failed) after everything is written and published."""
    lake_roots: tuple[LocalPath, ...] = ()
    """Folders whose Parquet files outside the configured datasets are scanned too (one target per
    top-level folder; hidden and `_` folders and the datasets themselves are skipped)."""
