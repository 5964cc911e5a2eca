"""Which report files the index refresh has already checked, by the SHA-256 of their bytes.

Checking a report's content (`chain._problem`: its self-hash and its exact sealed form) re-serialises
the whole document twice, about a second for a report of 10,000 entries; hashing its bytes costs a
few milliseconds. `index.html` is regenerated after every run, so without this it re-checks the whole
chain each time (docs/decisions/0292-incremental-index-check.md).

The cache (`.check-cache.json` beside the reports, owned by this module) maps a report file's bytes'
SHA-256 to its relative path and the `report_sha256` it was found to carry. Only passed checks are
recorded; a report whose bytes hash differently (one changed byte) is checked in full again. A cache
file that is missing, not JSON or of another version is ignored and rebuilt. The links between
reports, the chain index and the pages' hashes are checked on every refresh regardless.

Only the index page uses it: `report verify`, the HTTP API and certificates always check in full.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.datasets import storage

CACHE_NAME = ".check-cache.json"
VERSION = 1


@dataclass
class CheckCache:
    path: Path
    passed: dict[str, tuple[str, str]] = field(default_factory=dict)
    """bytes SHA-256 -> (relative path, report_sha256) of a report whose content check passed."""
    full_checks: list[str] = field(default_factory=list)
    """Relative paths checked in full (not from the cache) since this cache was loaded."""
    changed: bool = False

    @classmethod
    def load(cls, report_dir: Path) -> CheckCache:
        """The cache of `report_dir`; an empty one when it is missing, damaged or of another version."""
        path = report_dir / CACHE_NAME
        try:
            raw = json.loads(path.read_bytes().decode("utf-8"))
            if raw.get("version") != VERSION:
                raise ValueError
            passed = {str(k): (str(v[0]), str(v[1])) for k, v in raw["passed"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
            return cls(path)
        return cls(path, passed)

    def hit(self, relpath: str, bytes_sha256: str, report_sha256: str) -> bool:
        """Whether exactly these bytes, at this path, carrying this report hash, passed before."""
        if self.passed.get(bytes_sha256) == (relpath, report_sha256):
            return True
        self.full_checks.append(relpath)
        return False

    def record(self, relpath: str, bytes_sha256: str, report_sha256: str) -> None:
        self.passed = {k: v for k, v in self.passed.items() if v[0] != relpath}  # its earlier bytes
        self.passed[bytes_sha256] = (relpath, report_sha256)
        self.changed = True

    def keep_only(self, relpaths: set[str]) -> None:
        """Forget reports no longer on disk."""
        kept = {k: v for k, v in self.passed.items() if v[0] in relpaths}
        self.changed = self.changed or len(kept) != len(self.passed)
        self.passed = kept

    def save(self) -> None:
        if not self.changed:
            return
        body = {"version": VERSION, "passed": {k: list(v) for k, v in sorted(self.passed.items())}}
        storage.write_text_atomic(self.path, json.dumps(body, sort_keys=True) + "\n")
        self.changed = False
