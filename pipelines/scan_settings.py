"""`[scan]`: the residual scan's settings (pipelines/residual.py, README "Residual scan").

Kept apart from `pipelines/settings.py` so the scan's keys are read and documented in one place;
`settings_from_dict` calls `scan_settings` for the section.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipelines.errors import ConfigError

ScanSchedule = Literal["every_run", "weekly", "off"]
SCHEDULES = ("every_run", "weekly", "off")
WEEKLY_HOURS = 156.0
"""`weekly`: a nightly run scans when the last scan (nightly or `gdpr-sweep scan`) is at least 6.5 days
old; the half day absorbs a schedule that starts a few minutes earlier than the week before."""


@dataclass(frozen=True)
class ScanSettings:
    """`[scan]`: when the nightly sweep also searches every column for blacklisted people, and where else."""

    schedule: ScanSchedule = "weekly"
    """`every_run`, `weekly` (default; see WEEKLY_HOURS) or `off`. `gdpr-sweep scan` runs it at any time."""
    fail_on_residuals: bool = False
    """true: a finding fails the run (exit 1, flow run Failed) after everything is written and published."""
    lake_roots: tuple[Path, ...] = ()
    """Folders whose Parquet files outside the configured datasets are scanned too (one target per
    top-level folder; hidden and `_` folders and the datasets themselves are skipped)."""


def scan_settings(raw: Any, base: Path, where: str) -> ScanSettings:
    """The `[scan]` table of the configuration file; ConfigError naming the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [scan] must be a table")
    unknown = sorted(set(raw) - {"schedule", "fail_on_residuals", "lake_roots"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; see README 'Residual scan'")
    schedule = raw.get("schedule", "weekly")
    if schedule not in SCHEDULES:
        raise ConfigError(f"{where}: 'schedule' must be one of {', '.join(SCHEDULES)}")
    fail = raw.get("fail_on_residuals", False)
    if not isinstance(fail, bool):
        raise ConfigError(f"{where}: 'fail_on_residuals' must be true or false")
    roots = raw.get("lake_roots", [])
    if not isinstance(roots, list) or not all(isinstance(r, str) and r for r in roots):
        raise ConfigError(f"{where}: 'lake_roots' must be a list of folder paths")
    return ScanSettings(schedule, fail, tuple(Path(os.path.abspath(base / r)) for r in roots))
