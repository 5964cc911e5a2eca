"""Retention holds over HTTP on a real `gdpr-sweep serve`: blacklist keys only, the same validation as
the CLI, placement and release in the report chain with channel `api`."""

from __future__ import annotations

import json

import pytest

from pipelines.reporting import chain
from tests.api.conftest import start_server, stop_server

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("holds-api"))
    yield srv
    stop_server(srv)
    assert "@" not in srv.log, "the server log must not carry emails"


def test_holds_need_the_blacklist_key(served):
    with served.client(key="wrong-key-0123456789abcdef") as wrong, served.client(key="") as none:
        for client in (wrong, none):
            assert client.get("/api/v1.0/holds").status_code == 401
            assert client.post("/api/v1.0/holds", json={"Dataset": "events", "Reason": "tax"}).status_code == 401
    with served.client() as c:
        assert c.get("/api/v1.0/holds").json() == {"total": 0, "items": []}


def test_serving_without_a_key_refuses_every_hold_route(tmp_path):
    srv = start_server(tmp_path / "open", None, "--no-auth")
    try:
        with srv.client() as c:
            for resp in (c.get("/api/v1.0/holds"), c.post("/api/v1.0/holds", json={"Dataset": "events", "Reason": "t"}),
                         c.post("/api/v1.0/holds/00000000-0000-0000-0000-000000000000/release")):
                assert resp.status_code == 401 and "API key" in resp.json()["message"]
    finally:
        stop_server(srv)
    assert chain.read_index(srv.root / "reports") == []


def test_place_show_list_release_over_http(served):
    with served.client() as c:
        entry = c.post("/api/v1.0/blacklists", json={"Email": "hold-api@example.com"}).json()
        bid = entry["BlacklistId"]
        bad = [
            ({"Reason": "tax"}, 400),  # neither entry nor dataset
            ({"Dataset": "nope", "Reason": "tax"}, 400),
            ({"BlacklistId": "00000000-0000-0000-0000-000000000000", "Reason": "tax"}, 404),
            ({"BlacklistId": bid, "Reason": "claim of hold-api@example.com"}, 400),
            ({"BlacklistId": bid, "Reason": "tax", "Until": "2001-01-01"}, 400),
            ({"BlacklistId": bid, "Reason": "tax", "Extra": 1}, 400),
            ({"BlacklistId": bid, "Reason": 5}, 400),
        ]
        for body, status in bad:
            resp = c.post("/api/v1.0/holds", json=body)
            assert resp.status_code == status, (body, resp.text)
            assert "hold-api@example.com" not in resp.text
        assert c.get("/api/v1.0/holds").json()["total"] == 0

        resp = c.post("/api/v1.0/holds", content=json.dumps(
            {"BlacklistId": bid.upper(), "Dataset": "events", "Reason": "litigation 4 O 12/26", "Until": "2031-05-01"}),
            headers=JSON)
        assert resp.status_code == 201, resp.text
        hold = resp.json()
        assert (hold["BlacklistId"], hold["Dataset"], hold["Channel"], hold["State"], hold["Until"]) == (
            bid, "events", "api", "active", "2031-05-01T00:00:00.000000Z")
        assert c.get(f"/api/v1.0/holds/{hold['HoldId']}").json() == hold
        assert c.get("/api/v1.0/holds/not-a-uuid").status_code == 404
        assert c.get("/api/v1.0/holds", params={"active": "true"}).json()["items"] == [hold]
        assert c.get("/api/v1.0/holds", params={"nope": "1"}).status_code == 400

        released = c.post(f"/api/v1.0/holds/{hold['HoldId']}/release")
        assert released.status_code == 200 and released.json()["State"] == "released"
        assert released.json()["ReleaseChannel"] == "api"
        assert c.post(f"/api/v1.0/holds/{hold['HoldId']}/release").status_code == 400  # already released
        assert c.post("/api/v1.0/holds/00000000-0000-0000-0000-000000000000/release").status_code == 404
        assert c.get("/api/v1.0/holds", params={"active": "true"}).json()["total"] == 0

    records = [json.loads((served.root / "reports" / link.path).read_text())
               for link in chain.read_index(served.root / "reports") if link.kind == "hold"]
    assert [(r["hold"]["action"], r["hold"]["channel"]) for r in records] == [("place", "api"), ("release", "api")]
    assert chain.verify_chain(served.root / "reports").ok
