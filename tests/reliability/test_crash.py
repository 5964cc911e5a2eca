"""Crash safety (§5, §6): a sweep killed with SIGKILL at any point leaves every dataset either
the complete old version or the complete new one, never a half-written file where readers look, loses
no blacklist entry, and the next run completes and reconciles.

`crash_runner.py` forks a child per kill point that counts OS-boundary calls (renames, links, unlinks,
symlinks, fsyncs, folder removals, copies, Parquet row-group writes, SQLite commits) and kills itself
just before call N. The child writes a blacklist entry, then sweeps: the pipeline steps without
Prefect for 30+ points spread over the whole run (blacklist write, Parquet writes, manifests = the
incremental state, verification, the switch, old-version removal, the report), and the real Prefect
flow for a handful more (its report chain, artifacts and registry updates included).

How we checked that it fails when the protection is removed: making `storage.switch_version` delete
the old version before pointing at the new one (`shutil.rmtree(old)` before `_point`) leaves, at kill
points inside or after that removal, a dataset that is neither old nor new (files missing), and the
test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipelines.config.settings import load_settings
from pipelines.datasets import fileid, storage
from pipelines.registry.registry import Registry
from tests.helpers import EVENT_SCHEMA, PROFILE_SCHEMA, lake_config, make_event, make_profile, sweep, write
from tests.reliability.conftest import harness_api_url
from tests.support.prefect_env import child_env

RUNNER = Path(__file__).with_name("crash_runner.py")
FIRST = "first.gone@example.com"
SECOND = "second.gone@example.com"
CONFIG = lake_config("raw")


def build_baseline(root: Path) -> Path:
    """Swept once with FIRST blacklisted; then SECOND is blacklisted: the next run has work to do."""
    root.mkdir(parents=True)
    config = root / "gdpr-sweep.toml"
    config.write_text(CONFIG)
    people = [FIRST, SECOND, "kept1@example.com", "kept2@example.com"]
    for i in range(3):
        write(root / f"raw/profiles/p{i}.parquet",
              [make_profile(people[(i + k) % 4], device_ids=[f"dev{(i + k) % 4}"], profile_id=f"p{i}{k}")
               for k in range(3)], PROFILE_SCHEMA)
        write(root / f"raw/events/e{i}.parquet",
              [make_event(people[(i + k) % 4], device_id=f"dev{(i + k) % 4}", Amount=None) for k in range(4)]
              + [make_event(device_id=f"dev{k}", anonymous=True) for k in range(4)], EVENT_SCHEMA)
    settings = load_settings(config)
    registry = Registry(settings.blacklist_db)
    registry.add(email=FIRST, source="cli")
    snap = registry.snapshot()
    sweep(list(settings.datasets), snap.entries, run_id="baseline", version=snap.version)
    registry.add(email=SECOND, source="cli")
    return config


def contents(config: Path) -> dict[str, dict[str, list]]:
    """What readers see: per dataset, per visible file, its rows; every file must be readable."""
    settings = load_settings(config)
    seen = {}
    for ds in settings.datasets:
        assert ds.path.is_symlink(), f"{ds.path} is not a symlink to a version"
        folder = storage.current_version(ds.path)
        assert folder is not None and folder.is_dir(), f"{ds.path} points at a missing version"
        visible = sorted(p.name for p in folder.iterdir())
        tool_files = {storage.MANIFEST_NAME, fileid.IDENTITIES_NAME}  # the tool's own metadata, "_"-named
        assert all(n.endswith(".parquet") or n in tool_files for n in visible), visible
        files = storage.list_parquet(ds.path)
        seen[ds.name] = {rel: pq.read_table(ds.path / rel).to_pylist() for rel in files}
        rows = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{ds.path}/*.parquet')").fetchone()[0]
        assert rows == sum(len(r) for r in seen[ds.name].values())
        manifest = folder / storage.MANIFEST_NAME
        if manifest.exists():
            json.loads(manifest.read_text())
    return seen


def registry_ok(config: Path) -> set[str]:
    """The registry is intact, holds both acknowledged entries, and every entry has its history."""
    db = load_settings(config).blacklist_db
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    registry = Registry(db)
    emails = {r.email for r in registry.snapshot().records}
    assert {FIRST, SECOND} <= emails
    added = {h["BlacklistId"] for h in registry.history() if h["Action"] == "add"}
    assert {r.blacklist_id for r in registry.snapshot().records} <= added
    return emails


def run_runner(mode: str, cases: list[tuple[Path, int]], env: dict[str, str] | None = None) -> list[dict]:
    spec = {"mode": mode, "cases": [{"config": str(c), "kill_at": n} for c, n in cases]}
    spec_path = cases[0][0].parent.parent / f"spec-{mode}-{os.getpid()}-{len(cases)}-{cases[0][1]}.json"
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, str(RUNNER), str(spec_path)], capture_output=True, text=True,
                          timeout=600, env=env or dict(os.environ), cwd=spec_path.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def spread(total: int, count: int) -> list[int]:
    """`count` distinct kill points from 1 to total, evenly spread (all of them when there are fewer)."""
    if total <= count:
        return list(range(1, total + 1))
    return sorted({1 + round(i * (total - 1) / (count - 1)) for i in range(count)})


def check_after_kill(results: list[dict], old: dict, new: dict) -> None:
    for r in results:
        config = Path(r["config"])
        assert r["killed"] or r["message"].startswith("calls"), r
        state = contents(config)
        for name in state:  # per dataset (each switches in its own rename; see docs/reliability.md)
            assert state[name] in (old[name], new[name]), f"kill at {r['kill_at']}: {name} mixes old and new"
        registry_ok(config)


def check_after_rerun(results: list[dict], new: dict) -> None:
    for r in results:
        config = Path(r["config"])
        assert not r["killed"] and r["message"].startswith("calls"), r
        assert contents(config) == new, f"rerun after kill at {r['kill_at']} did not reconcile"
        assert "crash-concurrent@example.com" in registry_ok(config)
        settings = load_settings(config)
        for ds in settings.datasets:
            versions = list(storage.versions_dir(ds.path).iterdir())
            assert versions == [storage.current_version(ds.path).resolve()] or len(versions) == 1, versions
        leftovers = [p for p in config.parent.rglob("*") if p.name.endswith((".tmp", ".switch"))]
        assert not leftovers, leftovers


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    base = tmp_path_factory.mktemp("crash")
    config = build_baseline(base / "baseline")
    old = contents(config)
    reference = base / "reference"
    shutil.copytree(config.parent, reference, symlinks=True)
    return base, config, old


def _copies(base: Path, config: Path, points: list[int], tag: str) -> list[tuple[Path, int]]:
    cases = []
    for n in points:
        target = base / f"{tag}-{n}"
        shutil.copytree(config.parent, target, symlinks=True)
        cases.append((target / config.name, n))
    return cases


def test_sigkill_at_30_plus_points_of_the_pipeline(baseline):
    base, config, old = baseline
    [reference] = run_runner("pipeline", [(base / "reference" / config.name, 0)])
    total = int(reference["message"].split()[1])
    new = contents(base / "reference" / config.name)
    assert new != old
    points = spread(total, 36)
    assert len(points) >= 30, total
    cases = _copies(base, config, points, "pipe")
    results = run_runner("pipeline", cases)
    assert sum(r["killed"] for r in results) >= 30
    check_after_kill(results, old, new)
    check_after_rerun(run_runner("pipeline", [(c, 0) for c, _ in cases]), new)


def test_sigkill_inside_the_real_flow(prefect_harness, baseline):
    base, config, old = baseline
    env = child_env(harness_api_url())
    ref = _copies(base, config, [0], "flowref")
    [reference] = run_runner("flow", ref, env)
    assert reference["message"].startswith("calls"), reference
    total = int(reference["message"].split()[1])
    new = contents(ref[0][0])
    points = spread(total, 4)
    cases = _copies(base, config, points, "flow")
    results = run_runner("flow", cases, env)
    assert sum(r["killed"] for r in results) >= 3
    check_after_kill(results, old, new)
    check_after_rerun(run_runner("flow", [(c, 0) for c, _ in cases], env), new)
