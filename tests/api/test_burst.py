"""2,000 mixed requests from 16 concurrent clients: only the intended responses, the expected registry.

Each client owns its identities and sends a seeded random sequence, so it knows what every one of
its responses must be; all clients also race to add one shared email (every answer 201, exactly one
with `"Created": true`).
"""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.api.conftest import KEY

CLIENTS = 16
REQUESTS_PER_CLIENT = 125  # 16 x 125 = 2,000
SHARED = "shared-burst@example.com"
JSON = {"Content-Type": "application/json"}


def run_client(server, n: int, barrier: threading.Barrier) -> dict:
    rng = random.Random(n)
    entries: dict[str, str] = {}          # email -> BlacklistId, as this client expects them
    users: dict[str, bool] = {}           # user id -> blacklisted
    unexpected: list[str] = []
    shared_status = None

    def check(resp, want: int, what: str) -> None:
        if resp.status_code != want:
            unexpected.append(f"client {n} {what}: {resp.status_code} (wanted {want}) {resp.text[:200]}")

    with server.client() as c:
        barrier.wait()
        resp = c.post("/api/v1.0/blacklists", json={"Email": SHARED})
        shared_status = (resp.status_code, resp.json().get("Created"))
        for i in range(REQUESTS_PER_CLIENT - 1):
            op = rng.choice(["add", "add", "dup", "delete", "delete404", "put", "get", "event", "list",
                             "bad", "anon"])
            user = f"bu{n}-{rng.randrange(4)}"
            if op == "add" or (op in ("dup", "delete") and not entries):
                email = f"burst{n}-{i}@example.com"
                resp = c.post("/api/v1.0/blacklists", json={"Email": email, "Scope": "DefaultScope"})
                check(resp, 201, "add")
                if resp.status_code == 201:
                    entries[email] = resp.json()["BlacklistId"]
            elif op == "dup":
                email = rng.choice(sorted(entries))
                resp = c.post("/api/v1.0/blacklists", json={"Email": email.upper(), "Scope": "DefaultScope"})
                check(resp, 201, "duplicate add")  # 201 as the vendor's clients expect; Created tells
                if resp.status_code == 201 and resp.json()["Created"] is not False:
                    unexpected.append(f"client {n}: duplicate add says Created")
                if resp.status_code == 201 and resp.json()["BlacklistId"] != entries[email]:
                    unexpected.append(f"client {n}: duplicate add returned another id")
            elif op == "delete":
                email = rng.choice(sorted(entries))
                check(c.delete(f"/api/v1.0/blacklists/{entries.pop(email)}"), 200, "delete")
            elif op == "delete404":
                check(c.delete(f"/api/v1.0/blacklists/{uuid.uuid4()}"), 404, "delete unknown")
            elif op == "put":
                value = rng.random() < 0.5
                check(c.put(f"/users/{user}/blacklist-status", json={"blacklisted": value}), 200, "put")
                users[user] = value
            elif op == "get":
                resp = c.get(f"/users/{user}/blacklist-status")
                check(resp, 200, "get status")
                if resp.status_code == 200 and resp.json()["blacklisted"] != users.get(user, False):
                    unexpected.append(f"client {n}: status of {user} is {resp.json()['blacklisted']}")
            elif op == "event":
                value = rng.random() < 0.5
                body = {"id": user, "events": [{"event": "PageView"},
                                               {"event": "Blacklisted" if value else "Whitelisted"}]}
                check(c.post("/events", json=body), 200, "event")
                users[user] = value
            elif op == "list":
                email = rng.choice(sorted(entries) or [f"burst{n}-none@example.com"])
                resp = c.get("/api/v1.0/blacklists", params={"$filter": f"Email eq '{email}'"})
                check(resp, 200, "list")
                if resp.status_code == 200 and resp.json()["total"] != (1 if email in entries else 0):
                    unexpected.append(f"client {n}: list total {resp.json()['total']}")
            elif op == "bad":
                resp = c.post("/api/v1.0/blacklists", content=b'{"Email": "x@example.com", "Oops": 1}',
                              headers=JSON)
                check(resp, 400, "bad body")
            else:
                resp = c.post("/api/v1.0/blacklists", json={"Email": "anon@example.com"},
                              headers={"X-Api-Key": KEY[::-1]})
                check(resp, 401, "anonymous")
    return {"entries": entries, "users": users, "unexpected": unexpected, "shared": shared_status}


def test_burst_of_2000_mixed_requests_from_16_clients(tmp_path):
    from tests.api.conftest import start_server, stop_server

    server = start_server(tmp_path / "burst")
    try:
        barrier = threading.Barrier(CLIENTS)
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(lambda n: run_client(server, n, barrier), range(CLIENTS)))
    finally:
        stop_server(server)

    problems = [p for r in results for p in r["unexpected"]]
    assert problems == []
    shared = sorted(r["shared"] for r in results)
    assert shared == [(201, False)] * (CLIENTS - 1) + [(201, True)]

    registry = server.registry
    expected_emails = {e: bid for r in results for e, bid in r["entries"].items()}
    records = registry.snapshot().records
    by_email = {r.email: r.blacklist_id for r in records if r.email}
    shared_id = by_email.pop(SHARED)
    assert shared_id
    assert by_email == expected_emails
    expected_users = {u: v for r in results for u, v in r["users"].items()}
    assert {r.user_id for r in records if r.user_id} == {u for u, v in expected_users.items() if v}
    for user, value in expected_users.items():
        assert registry.status(user_id=user)["blacklisted"] is value
    assert "@" not in server.log
    assert "Traceback" not in server.log
