"""Group commit (decision 0311): writes queued together share one transaction; a write that fails is
undone alone; a batch that fails answers no success; the history follows the order of arrival.

The writer is held inside a first write until the others are queued, so they form one batch for sure
(the writer drains the queue after each commit)."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

from pipelines.core.errors import InputError, NotFound, SweepError
from pipelines.registry.group import GroupCommit
from pipelines.registry.model import make_identity
from pipelines.registry.registry import Registry
from pipelines.registry.store import _Tx


def _adder(registry: Registry, email: str):
    ident = make_identity(email, None, None)

    def job(tx: _Tx) -> str:
        _, records = registry._set(tx, ident, True, tx.now, "api", "add", force=True)
        return records[0].blacklist_id

    return job


def _held_batch(registry: Registry, jobs: list, cancel: tuple[int, ...] = ()) -> list[Future]:
    """Submit `jobs` while the writer is held inside a first write, then let it go: one batch. The
    futures numbered in `cancel` are cancelled before (their caller gave up)."""
    group = GroupCommit(registry)
    entered, release = threading.Event(), threading.Event()

    def hold(tx: _Tx) -> None:
        entered.set()
        release.wait()

    first = group.submit(hold)
    entered.wait()
    futures = [group.submit(job) for job in jobs]
    assert all(futures[i].cancel() for i in cancel)
    release.set()
    first.result()
    group.close()  # returns once every queued write is answered
    return futures


def _emails(db: Path) -> set[str]:
    con = sqlite3.connect(db)
    try:
        return {r[0] for r in con.execute("SELECT email FROM entries")}
    finally:
        con.close()


def test_a_failing_write_is_undone_alone_and_gets_its_own_error(tmp_path):
    db = tmp_path / "blacklist.db"
    registry = Registry(db)

    def bad_input(tx: _Tx) -> None:
        _adder(registry, "half-done@example.com")(tx)  # written, then undone with its savepoint
        raise InputError("bad")

    def missing(tx: _Tx) -> None:
        raise NotFound("no such entry")

    jobs = [_adder(registry, "a@example.com"), bad_input, _adder(registry, "b@example.com"), missing,
            _adder(registry, "c@example.com")]
    futures = _held_batch(registry, jobs)
    assert isinstance(futures[1].exception(), InputError)
    assert isinstance(futures[3].exception(), NotFound)
    ids = [futures[i].result() for i in (0, 2, 4)]
    assert _emails(db) == {"a@example.com", "b@example.com", "c@example.com"}
    seqs = [registry.history(bid)[0]["Seq"] for bid in ids]
    assert seqs == sorted(seqs)  # the order of arrival
    assert all(h["BlacklistId"] in ids for h in registry.history())  # nothing of the undone write


def test_a_failed_batch_answers_no_success_and_stores_nothing(tmp_path):
    db = tmp_path / "blacklist.db"
    registry = Registry(db)

    def breaks_the_transaction(tx: _Tx) -> None:  # as SQLite does itself on a full disk or an I/O error
        tx.con.execute("ROLLBACK")
        raise SweepError("disk I/O error")

    jobs = [_adder(registry, "a@example.com"), breaks_the_transaction, _adder(registry, "b@example.com")]
    futures = _held_batch(registry, jobs)
    for future in futures:
        assert isinstance(future.exception(), SweepError)
    assert _emails(db) == set()
    # The writer recovers: the next write goes through.
    assert Registry(db, group_commit=True).add(email="after@example.com", source="api")[1] is True
    assert _emails(db) == {"after@example.com"}


def test_registry_with_group_commit_answers_like_without(tmp_path):
    registry = Registry(tmp_path / "blacklist.db", group_commit=True)
    try:
        record, created = registry.add(email="Anna@Example.com", source="api")
        assert created and registry.add(email="anna@example.com", source="api") == (record, False)
        assert registry.set_status(user_id="u1", blacklisted=True, channel="api")["Outcome"] == "applied"
        assert registry.status(user_id="u1")["blacklisted"] is True
        assert registry.remove(record.blacklist_id, channel="api") == record
        with pytest.raises(NotFound):
            registry.remove(record.blacklist_id, channel="api")
        with pytest.raises(InputError):
            registry.add(email="not an email", source="api")
        assert [h["Action"] for h in registry.history()] == ["add", "add", "set", "remove"]
    finally:
        registry.close_writer()


def test_a_write_whose_caller_gave_up_before_it_ran_is_not_applied(tmp_path):
    db = tmp_path / "blacklist.db"
    registry = Registry(db)
    jobs = [_adder(registry, f"{name}@example.com") for name in ("a", "gone", "b")]
    futures = _held_batch(registry, jobs, cancel=(1,))
    assert futures[1].cancelled() and futures[0].result() and futures[2].result()
    assert _emails(db) == {"a@example.com", "b@example.com"}


def test_add_later_needs_group_commit_and_checks_input_at_once(tmp_path):
    with pytest.raises(SweepError, match="group_commit"):
        Registry(tmp_path / "blacklist.db").add_later(email="a@example.com", source="api")
    registry = Registry(tmp_path / "blacklist.db", group_commit=True)
    try:
        with pytest.raises(InputError):
            registry.add_later(email="not an email", source="api")
        record, created = registry.add_later(email="a@example.com", source="api").result()
        assert created and registry.get(record.blacklist_id) == record
    finally:
        registry.close_writer()
