"""Checks on where the configured locations lie, run once the file's values are valid.

Each check takes the validated `Settings` and the file's path and raises `ConfigError` (exit 2) with one
line naming the file and the key(s). `LOCATION_CHECKS` is the hook: a rule about where datasets may
live (docs/reliability.md) is one function listed there, and `check_locations` runs them all in order,
for every command (CLI, HTTP server, flows), right after the values are checked.

- `inside_base`: every local path the tool writes or deletes in lies inside `[sweep] base_dir`.
- `apart`: no dataset's `path` or `source` equals, contains or lies inside another's or its own
  (issue 13 findings 1 and 6; `pipelines.config.overlap`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config.overlap import find_overlap
from pipelines.core.errors import ConfigError

if TYPE_CHECKING:
    from pipelines.config.settings import Settings

LocationCheck = Callable[["Settings", Path], None]


def _real(path: Path) -> Path:
    """The last part may be a symlink (a dataset path points at its current version): resolve the parent."""
    return Path(os.path.realpath(path.parent)) / path.name


def inside_base(settings: Settings, config_path: Path) -> None:
    """Refuse local paths outside the base folder: a typo or a hostile configuration must not make the
    sweep adopt, rename or delete folders elsewhere on the machine (`..`, absolute paths, symlinked
    parents are all resolved before the check). `[sweep] allow_paths_outside_base = true` lifts it."""
    if settings.allow_paths_outside_base or settings.base_dir is None:
        return
    real_base = Path(os.path.realpath(settings.base_dir))
    checks = [(f"[sweep] {key}", getattr(settings, key)) for key in ("work_dir", "report_dir", "blacklist_db")]
    for i, ds in enumerate(settings.datasets):
        if ds.url is None:
            checks.append((f"datasets[{i}].path ({ds.name})", ds.path))
        if ds.source is not None:
            checks.append((f"datasets[{i}].source ({ds.name})", ds.source))
    for key, path in checks:
        real = _real(path)
        if real != real_base and real_base not in real.parents:
            raise ConfigError(f"{config_path}: {key}: {path} is outside the base folder {real_base}; move it "
                              "inside, set [sweep] base_dir, or set [sweep] allow_paths_outside_base = true")


def apart(settings: Settings, config_path: Path) -> None:
    """Refuse a dataset `path` or `source` that equals, contains or lies inside another's or its own:
    a sweep would publish, move or delete the other's files (issue 13 findings 1 and 6)."""
    overlap = find_overlap(settings.datasets)
    if overlap:
        raise ConfigError(f"{config_path}: {overlap}")


LOCATION_CHECKS: list[LocationCheck] = [inside_base, apart]
"""The hook: checks run by `check_locations`, in order; the first failure is the one reported."""


def check_locations(settings: Settings, config_path: Path) -> None:
    """Run every check of `LOCATION_CHECKS` on freshly loaded settings."""
    for check in LOCATION_CHECKS:
        check(settings, config_path)
