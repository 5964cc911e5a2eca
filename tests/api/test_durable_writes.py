"""Durable writes under group commit (decision 0311), against a real `gdpr-sweep serve` on 127.0.0.1.

24 clients write at once: new emails (POST), user statuses (PUT, read back at once), deletes of ids that
do not exist (404 from inside a batch) and invalid emails (400). The server is killed (SIGKILL, no
graceful shutdown) while the clients still write, and started again on the same folder. Then:
- every write that was answered with success is in the registry;
- every bad request got its own error, and no client saw anything else fail before the kill;
- a status read sent after a PUT's answer saw the PUT;
- the history follows the order of the answers: a write sent after another's answer comes later.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from tests.api.conftest import start_server, stop_server

CLIENTS = 24
REQUESTS_PER_CLIENT = 60
KILL_AFTER = 500  # successful writes before the server is killed; the clients would send 1,440 requests


@dataclass
class Log:
    """What one client sent and heard. Times are `time.monotonic()` marks, compared only for order."""

    adds: list[tuple[float, float, str, str]] = field(default_factory=list)  # sent, answered, email, id
    statuses: list[str] = field(default_factory=list)  # user ids set to blacklisted, answered 200
    unexpected: list[str] = field(default_factory=list)
    bad_answered: int = 0


def _client(server, n: int, barrier: threading.Barrier, successes: list[int], enough: threading.Event) -> Log:
    log = Log()
    try:
        with server.client() as c:
            barrier.wait()
            for i in range(REQUESTS_PER_CLIENT):
                try:
                    _one(c, n, i, log)
                except httpx.TransportError:  # the server was killed: this request was not answered
                    break
                successes.append(1)
                if len(successes) >= KILL_AFTER:
                    enough.set()
    finally:
        successes.append(0)  # a client that stops early (an error) must not leave the test waiting
        if successes.count(0) == CLIENTS:
            enough.set()
    return log


def _one(c: httpx.Client, n: int, i: int, log: Log) -> None:
    kind = (n + i) % 6
    if kind == 4:
        resp = c.delete(f"/api/v1.0/blacklists/{uuid.uuid4()}")
        _expect(log, resp, 404, "delete of an unknown id")
    elif kind == 5:
        resp = c.post("/api/v1.0/blacklists", json={"Email": f"not-an-email-{n}-{i}"})
        _expect(log, resp, 400, "invalid email")
    elif kind == 3:
        user = f"dw-user-{n}-{i}"
        resp = c.put(f"/users/{user}/blacklist-status", json={"blacklisted": True})
        if _expect(log, resp, 200, "status PUT"):
            log.statuses.append(user)
            read = c.get(f"/users/{user}/blacklist-status")
            if read.status_code != 200 or read.json()["blacklisted"] is not True:
                log.unexpected.append(f"client {n}: a read after the PUT's answer did not see it")
    else:
        email = f"dw-{n}-{i}@example.com"
        sent = time.monotonic()
        resp = c.post("/api/v1.0/blacklists", json={"Email": email})
        if _expect(log, resp, 201, "add") and resp.json()["Created"] is True:
            log.adds.append((sent, time.monotonic(), email, resp.json()["BlacklistId"]))
    if kind in (4, 5) and resp.status_code in (400, 404):
        log.bad_answered += 1


def _expect(log: Log, resp: httpx.Response, status: int, what: str) -> bool:
    if resp.status_code != status:
        log.unexpected.append(f"{what}: {resp.status_code} (wanted {status}) {resp.text[:120]}")
        return False
    return True


def test_answered_writes_survive_a_kill_and_keep_their_order(tmp_path):
    root = tmp_path / "durable"
    server = start_server(root)
    successes: list[int] = []
    enough = threading.Event()
    try:
        barrier = threading.Barrier(CLIENTS + 1)
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(_client, server, n, barrier, successes, enough) for n in range(CLIENTS)]
            barrier.wait()
            enough.wait()
            server.proc.kill()  # no graceful shutdown: only what was made durable may be relied on
            logs = [f.result() for f in futures]
    finally:
        stop_server(server)

    assert [p for log in logs for p in log.unexpected] == []
    assert sum(log.bad_answered for log in logs) > 0
    adds = sorted((a for log in logs for a in log.adds), key=lambda a: a[1])
    users = [u for log in logs for u in log.statuses]
    assert len(adds) > 100 and users

    again = start_server(root)
    try:
        with again.client() as c:
            for user in users:
                assert c.get(f"/users/{user}/blacklist-status").json()["blacklisted"] is True, "a PUT was lost"
        registry = again.registry
        stored = {r.email: r.blacklist_id for r in registry.snapshot().records}
        missing = [email for _, _, email, _ in adds if email not in stored]
        assert missing == [], f"{len(missing)} answered writes are missing after the restart"
        assert all(stored[email] == bid for _, _, email, bid in adds)
        seq = {h["BlacklistId"]: h["Seq"] for h in registry.history() if h["Action"] == "add"}
    finally:
        stop_server(again)
    _check_order(adds, seq)


def _check_order(adds: list[tuple[float, float, str, str]], seq: dict[str, int]) -> None:
    """For every pair where A was answered before B was sent, A's history row comes before B's."""
    by_sent = sorted(adds, key=lambda a: a[0])
    latest, j = 0, 0  # the highest sequence number among the writes answered so far
    for sent, _, _, bid in by_sent:
        while j < len(adds) and adds[j][1] < sent:
            latest = max(latest, seq[adds[j][3]])
            j += 1
        assert seq[bid] > latest, "a write sent after another's answer comes before it in the history"
