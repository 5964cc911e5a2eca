"""CrossEngage paths, with the request bodies of the source document (seeds/000), byte for byte."""

from __future__ import annotations

import pytest

JSON = {"Content-Type": "application/json"}
BLACKLIST = b'{ "blacklisted": true }'
WHITELIST = b'{ "blacklisted": false }'
EVENT_BLACKLISTED = b'{ "id": "USERID", "events": [ { "event": "Blacklisted" } ] }'
EVENT_WHITELISTED = b'{ "id": "USERID", "events": [ { "event": "Whitelisted" } ] }'


def status(client, user_id):
    resp = client.get(f"/users/{user_id}/blacklist-status")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_put_and_get_blacklist_status(server, client):
    assert status(client, "u-put")["blacklisted"] is False  # the default for every user
    resp = client.put("/users/u-put/blacklist-status", content=BLACKLIST, headers=JSON)
    assert resp.status_code == 200, resp.text
    assert resp.json()["blacklisted"] is True
    now = status(client, "u-put")
    assert now["blacklisted"] is True and now["channel"] == "api" and now["BlacklistId"]
    assert server.registry.get(now["BlacklistId"]).user_id == "u-put"  # same store as the CLI

    resp = client.put("/users/u-put/blacklist-status", content=WHITELIST, headers=JSON)
    assert resp.status_code == 200 and resp.json()["blacklisted"] is False
    assert status(client, "u-put")["blacklisted"] is False
    assert server.registry.list(user_id="u-put").total == 0


def test_events_by_user_id_blacklist_then_whitelist(server, client):
    resp = client.post("/events", content=EVENT_BLACKLISTED, headers=JSON)
    assert resp.status_code == 200, resp.text
    assert resp.json()["commands"] == 1 and resp.json()["ignored"] == 0
    assert status(client, "USERID")["blacklisted"] is True
    assert server.registry.list(user_id="USERID").total == 1

    resp = client.post("/events", content=EVENT_WHITELISTED, headers=JSON)
    assert resp.status_code == 200, resp.text
    assert status(client, "USERID")["blacklisted"] is False
    assert server.registry.list(user_id="USERID").total == 0


def test_events_for_a_lead_by_email_and_business_unit(server, client):
    body = {"email": "Lead@Example.com", "businessUnit": "newsletter",
            "events": [{"event": "Blacklisted", "properties": {"reason": "unsubscribe link"}}]}
    resp = client.post("/events", json=body)
    assert resp.status_code == 200, resp.text
    page = server.registry.list(email="lead@example.com")
    assert [(r.email, r.scope, r.source) for r in page.items] == [("lead@example.com", "newsletter", "api")]


def test_other_events_are_ignored_and_nothing_is_stored(server, client):
    before = server.registry.list(top=9_999).total
    resp = client.post("/events", json={"id": "u-other", "events": [{"event": "Purchase", "properties": {"x": 1}},
                                                                     {"event": "PageView"}]})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["received"], resp.json()["commands"], resp.json()["ignored"]) == (2, 0, 2)
    assert server.registry.list(top=9_999).total == before
    assert status(client, "u-other")["blacklisted"] is False


def test_latest_event_wins_within_a_batch(client):
    body = {"id": "u-latest", "events": [
        {"event": "Whitelisted", "timestamp": "2026-11-02T10:00:00Z"},
        {"event": "Blacklisted", "timestamp": "2026-11-01T10:00:00Z"},
        {"event": "Purchase"},
    ]}
    resp = client.post("/events", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["ignored"] == 1
    assert status(client, "u-latest")["blacklisted"] is False


@pytest.mark.parametrize("body", [
    {"events": [{"event": "Blacklisted"}]},                                     # nobody addressed
    {"id": "u-bad", "events": []},                                               # no events
    {"id": "u-bad", "events": [{"event": "Blacklisted", "timestamp": "yesterday"}]},
    {"id": "u-bad", "events": [{"event": "Blacklisted"}, {"event": "blacklisted"}]},  # case typo: whole batch refused
    {"id": "u-bad", "businessUnit": "shop", "events": [{"event": "Blacklisted"}]},
    {"email": "not-an-email", "events": [{"event": "Blacklisted"}]},
    {"email": "lead@example.com", "businessUnit": "Not A Scope", "events": [{"event": "Blacklisted"}]},
    {"id": 42, "events": [{"event": "Blacklisted"}]},
    {"id": "u-bad", "events": [{"event": "Blacklisted", "extra": 1}]},
    {"id": "u-bad", "events": {"event": "Blacklisted"}},
])
def test_bad_event_batches_are_400_and_apply_nothing(server, client, body):
    before = server.registry.history()
    resp = client.post("/events", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"]
    assert server.registry.history() == before
    assert status(client, "u-bad")["blacklisted"] is False


@pytest.mark.parametrize("body", [b'{ "blacklisted": "true" }', b'{ "blacklisted": 1 }', b"{}",
                                  b'{ "blacklisted": true, "scope": "x" }', b'{ "blacklisted": tru'])
def test_bad_status_bodies_are_400(server, client, body):
    resp = client.put("/users/u-badput/blacklist-status", content=body, headers=JSON)
    assert resp.status_code == 400 and resp.json()["message"]
    assert status(client, "u-badput")["blacklisted"] is False


def test_over_long_user_id_in_the_path_is_400(client):
    resp = client.put(f"/users/{'u' * 300}/blacklist-status", content=BLACKLIST, headers=JSON)
    assert resp.status_code == 400 and resp.json()["message"]
