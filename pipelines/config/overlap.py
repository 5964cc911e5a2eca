"""Refuse datasets whose locations overlap (issue 13 findings 1 and 6, docs/reliability.md).

Every dataset owns its `path` (with the version folder beside it, `.<name>.versions`) and its `source`
outright: the sweep replaces what is under `path` and deletes what it took in from `source`. Two such
locations that are equal, or one inside the other, would let one dataset's run publish, move or
delete another's files (or its own raw snapshots as published ones). So no location may equal,
contain or lie inside another, whether the other belongs to a different dataset or to the same one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol


class _Dataset(Protocol):
    """What the check needs of a dataset's configuration (`pipelines.config.settings.DatasetConfig`)."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def source(self) -> Path | None: ...
    @property
    def url(self) -> str | None: ...
    @property
    def source_url(self) -> str | None: ...


@dataclass(frozen=True)
class _Place:
    label: str
    """`datasets[1].source (events)`: how the error names the key (as `pipelines.config.paths` does)."""
    shown: str
    """The location as configured, for the message."""
    forms: tuple[tuple[str, ...], ...]
    """The location as path parts (scheme and bucket first for a URL), each way it can be resolved."""


def find_overlap(datasets: Sequence[_Dataset]) -> str | None:
    """A message naming the first two overlapping locations (both keys), or None when none overlap."""
    places = [place for i, ds in enumerate(datasets) for place in _places(i, ds)]
    for i, a in enumerate(places):
        for b in places[i + 1:]:
            relation = _relation(a, b)
            if relation:
                return (f"{a.label}: {a.shown} {relation} {b.label}: {b.shown}; every dataset's path and "
                        "source must be separate folders that neither contain nor lie inside one another, "
                        "or a sweep would publish, move or delete the other's files")
    return None


def _places(index: int, ds: _Dataset) -> list[_Place]:
    def label(key: str) -> str:
        return f"datasets[{index}].{key} ({ds.name})"

    if ds.url is not None:
        found = [_Place(label("path"), ds.url, (_url_parts(ds.url),))]
        if ds.source_url is not None:
            found.append(_Place(label("source"), ds.source_url, (_url_parts(ds.source_url),)))
        return found
    versions = ds.path.with_name(f".{ds.path.name}.versions")  # the dataset's own version folders
    found = [_Place(label("path"), str(ds.path), _local_forms(ds.path) + _local_forms(versions))]
    if ds.source is not None:
        found.append(_Place(label("source"), str(ds.source), _local_forms(ds.source)))
    return found


def _local_forms(path: Path) -> tuple[tuple[str, ...], ...]:
    """The path as written (absolute), with its parent's symlinks resolved (the last part may be the
    dataset's own symlink to its current version), and fully resolved."""
    forms = {Path(os.path.abspath(path)).parts, (Path(os.path.realpath(path.parent)) / path.name).parts,
             Path(os.path.realpath(path)).parts}
    return tuple(("file", *f) for f in sorted(forms))


def _url_parts(url: str) -> tuple[str, ...]:
    scheme, rest = url.split("://", 1)
    return (scheme, *PurePosixPath("/" + rest.strip("/")).parts[1:])


def _relation(a: _Place, b: _Place) -> str:
    """`is the same folder as`, `contains`, `lies inside` (a relative to b), or `` when apart."""
    for x in a.forms:
        for y in b.forms:
            if x == y:
                return "is the same folder as"
            if x == y[:len(x)]:
                return "contains"
            if y == x[:len(y)]:
                return "lies inside"
    return ""
