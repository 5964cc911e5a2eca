"""Privacy (§1, §5, §7): after a full demo run through the real command (sample data, sample
blacklist, two sweeps), no blacklisted person's email, name or device id appears in the command's
output and logs, the reports, the Prefect logs and artifacts, the cleaned data, or any file the run
left behind (temporary files included). Only the registry and the sample blacklist it imported may
hold them (the demo deletes the raw snapshots it consumed; the test reads its own copy, `reference/`).

How we checked that it fails when the protection is removed: logging the entries' emails in the
flow's `load_blacklist` (`get_run_logger().info("entries %s", [r.email for r in ...])`) makes
`test_no_identifier_in_outputs_logs_or_files` fail (the command's captured output holds them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipelines.config.settings import load_settings
from pipelines.registry.registry import Registry


def _sample(run) -> Path:
    return run.reference


@pytest.fixture(scope="module")
def identifiers(demo_run):
    """(every entry's identifiers, the unscoped entries' identifiers), each a set of lower-case strings:
    emails from the registry; names and device ids of the raw profiles and events those emails or user
    ids match. Names shared with people who are not blacklisted are left out (they are not theirs)."""
    settings = load_settings(demo_run.config)
    records = Registry(settings.blacklist_db).snapshot().records
    sample = _sample(demo_run)
    con = duckdb.connect()

    def collect(records):
        emails = sorted({r.email for r in records if r.email})
        users = sorted({r.user_id for r in records if r.user_id})
        hit_p = "(lower(trim(Info.Email)) IN (SELECT unnest($e)) OR UserId IN (SELECT unnest($u)))"
        hit_e = "(lower(trim(\"User\".Email)) IN (SELECT unnest($e)) OR \"User\".UserId IN (SELECT unnest($u)))"
        params = {"e": emails or [""], "u": users or [""]}
        profiles = f"read_parquet('{sample}/profiles/**/*.parquet')"
        events = f"read_parquet('{sample}/events/**/*.parquet')"
        names = {n for (n,) in con.execute(
            f"SELECT Name FROM {profiles} WHERE {hit_p} UNION SELECT \"User\".Name FROM {events} WHERE {hit_e}",
            params).fetchall() if n}
        others = {n for (n,) in con.execute(
            f"SELECT Name FROM {profiles} WHERE NOT coalesce({hit_p}, false) UNION "
            f"SELECT \"User\".Name FROM {events} WHERE NOT coalesce({hit_e}, false)", params).fetchall() if n}
        devices = {str(d) for (d,) in con.execute(
            f"SELECT unnest(DeviceIds) FROM {profiles} WHERE {hit_p} UNION "
            f"SELECT DeviceId FROM {events} WHERE {hit_e}", params).fetchall() if d is not None}
        return {e.lower() for e in emails} | {n.lower() for n in names - others} | {d.lower() for d in devices}

    everything = collect(records)
    unscoped = collect([r for r in records if r.scope is None])
    assert len(unscoped) > 10 and everything >= unscoped
    return everything, unscoped


def _protected(path: Path, run) -> bool:
    """Files that may hold identifiers: the test's reference copy of the sample, the registry itself and
    the sample blacklist the demo imports into it (an input, like an Optimizely import file)."""
    rel = path.relative_to(run.root).as_posix()
    return (rel.startswith("reference/") or rel == "data/sample/blacklist.json"
            or Path(rel).name.startswith("blacklist.db"))


def _found(text: str, needles: set[str]) -> list[str]:
    text = text.lower()
    return sorted(n for n in needles if n in text)


def test_no_identifier_in_outputs_logs_or_files(demo_run, identifiers):
    everything, _ = identifiers
    assert not _found(demo_run.stdout + demo_run.stderr, everything)
    leaks = {}
    for dirpath, _, filenames in os.walk(demo_run.root):
        for name in filenames:
            path = Path(dirpath) / name
            if _protected(path, demo_run) or path.suffix == ".parquet":
                continue
            hits = _found(path.read_bytes().decode("utf-8", errors="ignore"), everything)
            if hits:
                leaks[str(path.relative_to(demo_run.root))] = len(hits)
    assert not leaks, leaks


def test_prefect_logs_and_artifacts_hold_no_identifier(demo_run, identifiers):
    from prefect.client.orchestration import get_client

    everything, _ = identifiers
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
        logs = client.read_logs()
        runs = client.read_flow_runs()
    assert any(a.key == "gdpr-sweep-report" for a in artifacts if a.key)
    texts = [json.dumps(a.data, default=str) + (a.description or "") for a in artifacts]
    texts += [log.message for log in logs]
    texts += [json.dumps(r.parameters, default=str) + json.dumps(r.state.message if r.state else "") for r in runs]
    assert not _found("\n".join(texts), everything)


def test_cleaned_data_holds_no_identifier(demo_run, identifiers):
    """Unscoped entries are gone from every scope: their emails, names and devices are nowhere in the
    cleaned datasets (scoped entries' data legitimately remains in other scopes)."""
    _, unscoped = identifiers
    settings = load_settings(demo_run.config)
    for ds in settings.datasets:
        files = sorted(ds.path.glob("**/*.parquet"))
        assert files
        text = "\n".join(json.dumps(pq.read_table(f).to_pylist(), default=str, ensure_ascii=False) for f in files)
        assert not _found(text, unscoped), ds.name


def test_no_temporary_files_left_behind(demo_run):
    """Every write goes through a dot-named temporary that is renamed or removed; none survive a run."""
    left = [str(p.relative_to(demo_run.root)) for p in demo_run.root.rglob("*")
            if p.name.endswith((".tmp", ".switch")) or ".tmp" in p.name.split(".")]
    assert not left, left
