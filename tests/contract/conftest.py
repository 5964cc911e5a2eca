"""The contract suite's backends and its one scenario per backend.

`BACKENDS` is the one list of kinds of dataset: each is a (format, store) pair from kinds.py. The
scenario runs the real sweep flow (`flows.sweep.gdpr_sweep`, on the session's Prefect API) on a lake
built through the backend, three times (the sweep, a quiet night, a night after a file was added),
and records what a user would look at in between; each test in test_contract.py asserts one case.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.contract import kinds, lake

# (format, store): adding a kind of dataset = a Format in kinds.py + one line here.
BACKENDS = [
    ("parquet", "local"),
    ("parquet", "s3"),
    ("delta", "local"),
    ("delta", "s3"),
    ("iceberg", "local"),
    ("iceberg", "s3"),
]
FORMATS = {"parquet": lambda root: kinds.ParquetFiles(), "delta": lambda root: kinds.DeltaTables(),
           "iceberg": lambda root: kinds.IcebergTables(root / "catalog" / "iceberg.db")}


def make_backend(fmt: str, store: str, root: Path, s3: Any) -> kinds.Backend:
    return kinds.Backend(kinds.LocalStore(root) if store == "local" else kinds.S3Store(s3), FORMATS[fmt](root))


@pytest.fixture(scope="module", params=BACKENDS, ids=[f"{f}-{s}" for f, s in BACKENDS])
def backend_kind(request) -> tuple[str, str]:
    return request.param


def sweep(config: Path) -> dict[str, Any]:
    """One nightly sweep through the flow, as `gdpr-sweep sweep` runs it; return its report."""
    from flows.sweep import gdpr_sweep

    return json.loads(Path(gdpr_sweep(config=str(config))).read_text())


def read_all(backend: kinds.Backend) -> dict[str, pa.Table]:
    return {name: backend.read(name) for name in lake.FILES}


@dataclass
class Scenario:
    backend: kinds.Backend
    config: Path
    before: dict[str, pa.Table]
    hits_before: list[str]
    report: dict[str, Any]
    after: dict[str, pa.Table]
    hits_after: list[str]
    scoped_hits_after: list[str]
    quiet_report: dict[str, Any]
    quiet_changes: dict[str, Any]
    late_report: dict[str, Any] = field(default_factory=dict)
    after_late: dict[str, pa.Table] = field(default_factory=dict)
    hits_after_late: list[str] = field(default_factory=list)


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What differs between two identity listings: added, removed or changed entries."""
    keys = set(before) | set(after)
    return {k: (before.get(k), after.get(k)) for k in sorted(keys) if before.get(k) != after.get(k)}


@pytest.fixture(scope="module")
def scenario(backend_kind, prefect_harness, s3_server, tmp_path_factory) -> Scenario:
    fmt, store = backend_kind
    root = tmp_path_factory.mktemp(f"contract-{fmt}-{store}")
    backend = make_backend(fmt, store, root, s3_server)
    config = lake.build(backend, root)
    before = read_all(backend)
    hits_before = backend.files_holding([lake.GONE])
    report = sweep(config)
    after = read_all(backend)
    hits_after = backend.files_holding([lake.GONE])
    scoped = backend.files_holding([lake.SCOPED])
    quiet_from = backend.identities()
    quiet = sweep(config)
    result = Scenario(backend, config, before, hits_before, report, after, hits_after, scoped, quiet,
                      changes(quiet_from, backend.identities()))
    rel, rows = lake.LATE_FILE
    backend.write("events", rel, rows, lake.EVENTS)
    result.late_report = sweep(config)
    result.after_late = read_all(backend)
    result.hits_after_late = backend.files_holding([lake.GONE])
    return result
