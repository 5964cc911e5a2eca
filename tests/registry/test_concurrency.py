"""Several processes adding and removing at once lose nothing and never corrupt the registry."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

from pipelines.registry.registry import Registry

PROCESSES = 8
ADDS = 120  # per process; 80 of them are removed again: 200 changes per process


def _email(worker: int, j: int) -> str:
    return f"w{worker}-{j}@example.com"


def _keeps(j: int) -> bool:
    return j % 3 == 2


def _work(db: str, worker: int, start: mp.synchronize.Event) -> list[str]:
    """Odd workers use the CrossEngage status calls, even ones the Optimizely add / remove."""
    registry = Registry(Path(db))
    start.wait()
    kept = []
    for j in range(ADDS):
        if worker % 2:
            registry.set_status(email=_email(worker, j), blacklisted=True, channel="api")
            if not _keeps(j):
                registry.set_status(email=_email(worker, j), blacklisted=False, channel="api")
        else:
            record, created = registry.add(email=_email(worker, j), source="cli")
            assert created
            if not _keeps(j):
                registry.remove(record.blacklist_id, channel="cli")
        if _keeps(j):
            kept.append(_email(worker, j))
    return kept


def test_eight_processes_lose_nothing(tmp_path):
    db = tmp_path / "blacklist.db"
    # No schema yet: the eight processes race to create it too.
    ctx = mp.get_context("spawn")
    start = ctx.Manager().Event()
    with ctx.Pool(PROCESSES) as pool:
        pending = [pool.apply_async(_work, (str(db), w, start)) for w in range(PROCESSES)]
        start.set()
        kept = [email for p in pending for email in p.get(timeout=300)]

    registry = Registry(db)
    snapshot = registry.snapshot()
    assert sorted(snapshot.table["email"].to_pylist()) == sorted(kept)
    assert len(kept) == PROCESSES * ADDS // 3

    history = registry.history()
    removes = PROCESSES * (ADDS - ADDS // 3)
    assert len(history) == PROCESSES * ADDS + removes
    assert [h["Seq"] for h in history] == list(range(1, len(history) + 1))
    assert all(h["Outcome"] == "applied" for h in history)
    assert snapshot.version == len(history)
    by_entry: dict[str, list[str]] = {}
    for h in history:
        by_entry.setdefault(h["BlacklistId"], []).append(h["Action"])
    assert len(by_entry) == PROCESSES * ADDS
    assert sorted(by_entry.values()) == sorted(
        [["add"]] * (PROCESSES // 2 * ADDS // 3) + [["add", "remove"]] * (PROCESSES // 2 * removes // PROCESSES)
        + [["set"]] * (PROCESSES // 2 * ADDS // 3) + [["set", "unset"]] * (PROCESSES // 2 * removes // PROCESSES))
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
