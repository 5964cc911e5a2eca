"""Checks on where the configured locations lie, run after the file's values are valid.

Each check takes the validated `Settings` and the file's path and raises `ConfigError` (exit 2) with one
line naming the file and the key(s). `LOCATION_CHECKS` is the hook: a rule about where datasets may
live (docs/reliability.md) is one function appended there, and `check_locations` runs them all in order.

- `inside_base`: every local path the tool writes or deletes in lies inside `[sweep] base_dir`.
- `no_overlap`: no dataset's `path` or `source` equals, contains or lies inside another dataset's `path`
  or `source`, or its own (issue 13 findings 1 and 6: the sweep would delete what it published, or
  publish a folder of mixed datasets). A dataset's `path` also owns its versions folder
  (`.<name>.versions`, pipelines/storage.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from pipelines.errors import ConfigError

if TYPE_CHECKING:
    from pipelines.settings import Settings

LocationCheck = Callable[["Settings", Path], None]


class Location(NamedTuple):
    """One configured location: the key that names it and the forms it is compared in."""

    key: str
    """`datasets[0].path (events)`: where it is in the file, with the dataset's name."""
    forms: tuple[tuple[str, ...], ...]
    """The location as path parts: as written (absolute), with symlinked parents resolved, and wholly
    resolved; for a dataset path also its versions folder. On object storage the URL's parts."""


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


def dataset_locations(settings: Settings) -> list[Location]:
    """Every dataset's `path` and `source`, in file order."""
    found = []
    for i, ds in enumerate(settings.datasets):
        key = f"datasets[{i}].{{}} ({ds.name})"
        if ds.url is not None:
            found.append(Location(key.format("path"), (tuple(ds.url.rstrip("/").split("/")),)))
        else:
            versions = ds.path.parent / f".{ds.path.name}.versions"
            forms = {ds.path, _real(ds.path), Path(os.path.realpath(ds.path)), versions, _real(versions)}
            found.append(Location(key.format("path"), tuple(sorted(p.parts for p in forms))))
        if ds.source is not None:
            forms = {ds.source, _real(ds.source), Path(os.path.realpath(ds.source))}
            found.append(Location(key.format("source"), tuple(sorted(p.parts for p in forms))))
        if ds.source_url is not None:
            found.append(Location(key.format("source"), (tuple(ds.source_url.rstrip("/").split("/")),)))
    return found


def _nested(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Equal, or one lies inside the other."""
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def no_overlap(settings: Settings, config_path: Path) -> None:
    """Refuse datasets whose locations equal, contain or lie inside each other (their own included)."""
    for first, second in combinations(dataset_locations(settings), 2):
        if any(_nested(a, b) for a in first.forms for b in second.forms):
            raise ConfigError(
                f"{config_path}: {first.key} and {second.key} overlap (equal, or one inside the other); "
                "give every dataset its own folders: the sweep replaces a dataset's path and deletes "
                "what it took in from a source")


LOCATION_CHECKS: list[LocationCheck] = [inside_base, no_overlap]
"""The hook: checks run by `check_locations`, in order; the first failure is the one reported."""


def check_locations(settings: Settings, config_path: Path) -> None:
    """Run every check of `LOCATION_CHECKS` on freshly loaded settings."""
    for check in LOCATION_CHECKS:
        check(settings, config_path)
