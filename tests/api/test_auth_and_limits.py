"""API key, body limits, strict bodies, errors as JSON, the OpenAPI document, and `serve` refusals."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api.conftest import CONFIG, KEY, start_server, stop_server
from tests.support.procs import run_cli

ID = "5f3f1e57-d88e-45e7-908c-3afb9c220db1"  # fixed: test ids must be the same in every pytest worker
EVERY_ROUTE = [
    ("GET", "/api/v1.0/blacklists", None),
    ("GET", "/api/v1.0/blacklists?$filter=Email eq 'secret@example.com'", None),
    ("POST", "/api/v1.0/blacklists", {"Email": "secret@example.com"}),
    ("DELETE", f"/api/v1.0/blacklists/{ID}", None),
    ("DELETE", f"/api/v1.0/blacklists/{ID}/ClearUserData", None),
    ("PUT", "/users/u-secret/blacklist-status", {"blacklisted": True}),
    ("GET", "/users/u-secret/blacklist-status", None),
    ("POST", "/events", {"id": "u-secret", "events": [{"event": "Blacklisted"}]}),
    ("GET", "/openapi.json", None),
    ("GET", "/no/such/path", None),
]


@pytest.mark.parametrize("headers", [{}, {"X-Api-Key": "wrong-key-0123456789"}, {"Authorization": "Bearer"},
                                     {"Authorization": f"Basic {KEY}"}, {"X-Api-Key": KEY[:-1]}])
@pytest.mark.parametrize(("method", "path", "body"), EVERY_ROUTE)
def test_every_route_is_401_without_the_key_and_changes_nothing(server, method, path, body, headers):
    before = server.registry.history()
    with server.client(key="") as anon:
        resp = anon.request(method, path, json=body, headers=headers)
    assert resp.status_code == 401
    assert resp.json()["message"] and "secret" not in resp.text
    assert server.registry.history() == before


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {KEY}"}, {"X-Api-Key": KEY},
                                     {"Authorization": f"epi-single {KEY}"}, {"X-XNG-AuthToken": KEY}])
def test_key_is_accepted_in_each_documented_header(server, headers):
    with server.client(key="") as anon:
        assert anon.get("/api/v1.0/blacklists", headers=headers).status_code == 200


def test_health_needs_no_key_and_tells_nothing(server):
    with server.client(key="") as anon:
        resp = anon.get("/healthz")
    assert resp.status_code == 200 and resp.json()["status"] == "ok"


def test_openapi_document_lists_every_path(client):
    doc = client.get("/openapi.json").json()
    assert set(doc["paths"]) >= {"/api/v1.0/blacklists", "/api/v1.0/blacklists/{blacklist_id}",
                                 "/api/v1.0/blacklists/{blacklist_id}/ClearUserData",
                                 "/users/{user_id}/blacklist-status", "/events"}
    params = {p["name"] for p in doc["paths"]["/api/v1.0/blacklists"]["get"]["parameters"]}
    assert params == {"$filter", "$skip", "$top", "$orderBy"}
    # validation errors are documented as what they are: 400 with {"message"}, never FastAPI's 422
    for operations in doc["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]
    assert doc["components"]["schemas"]["ErrorOut"]["required"] == ["message"]
    assert doc["components"]["schemas"]["BlacklistIn"]["additionalProperties"] is False


LONG = "x" * 300
BAD_POSTS = [
    (b'{"Email": "a@example.com",', "not valid JSON"),                  # malformed JSON
    (b'{"Email": "a@example.com"} trailing', "not valid JSON"),
    (b'{"Email": 5}', "Email"),                                         # wrong types
    (b'{"Email": ["a@example.com"]}', "Email"),
    (b'{"Email": "a@example.com", "Scope": 7}', "Scope"),
    (b'["a@example.com"]', "body"),
    (b'"a@example.com"', "body"),
    (b"null", "body"),
    (b"", "body"),
    (f'{{"Email": "{LONG}@example.com"}}'.encode(), "Email"),            # over-long strings
    (f'{{"Email": "a@example.com", "Scope": "{"s" * 65}"}}'.encode(), "Scope"),
    (f'{{"UserId": "{"u" * 257}"}}'.encode(), "UserId"),
    (b'{"Email": "a@example.com", "Name": "Anna"}', "unknown field"),   # unknown fields
    (b'{"email": "a@example.com"}', "unknown field"),
    (b'{"Email": "a@example.com", "BlacklistId": "x"}', "BlacklistId: expected a UUID"),  # read-only, checked
    (b"{}", "email or a user id"),                                      # no identity
    (b'{"Email": "not an email"}', "invalid email"),
    (b'{"Email": "a@example.com", "Scope": "Capital"}', "invalid scope"),
]


@pytest.mark.parametrize(("body", "expected"), BAD_POSTS)
def test_bad_post_bodies_are_400_with_a_message_and_nothing_stored(server, client, body, expected):
    before = server.registry.history()
    resp = client.post("/api/v1.0/blacklists", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    message = resp.json()["message"]
    assert expected in message
    assert "a@example.com" not in message and LONG not in message  # input is not echoed
    assert server.registry.history() == before


def test_body_limit_is_413_for_declared_and_streamed_bodies(server, client):
    before = server.registry.history()
    big = b'{"Email": "a@example.com", "Scope": "' + b"s" * 70_000 + b'"}'
    resp = client.post("/api/v1.0/blacklists", content=big, headers={"Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.json()["message"]

    def chunks():
        for _ in range(70):
            yield b" " * 1024

    resp = client.post("/events", content=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.json()["message"]
    assert server.registry.history() == before


def test_non_json_media_type_is_415(client):
    resp = client.post("/api/v1.0/blacklists", content=b"Email=a%40example.com",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415 and resp.json()["message"]


def test_errors_are_json_with_a_message(client):
    for resp in (client.get("/nowhere"), client.patch("/api/v1.0/blacklists"),
                 client.delete(f"/api/v1.0/blacklists/{uuid.uuid4()}")):
        assert resp.headers["content-type"].startswith("application/json")
        assert isinstance(resp.json()["message"], str)


def test_no_auth_mode_refuses_every_read_that_would_tell_who_is_blacklisted(tmp_path):
    srv = start_server(tmp_path / "noauth", None, "--no-auth")
    try:
        with srv.client() as anon:
            created = anon.post("/api/v1.0/blacklists", json={"Email": "quiet@example.com"})
            again = anon.post("/api/v1.0/blacklists", json={"Email": "quiet@example.com"})
            # the same answer whether or not the person was already on the list
            assert created.status_code == again.status_code == 201
            assert set(created.json()) == set(again.json()) == {"BlacklistId", "Email", "Scope"}
            assert anon.get("/api/v1.0/blacklists").status_code == 401
            assert anon.get("/api/v1.0/blacklists",
                            params={"$filter": "Email eq 'quiet@example.com'"}).status_code == 401
            assert anon.get("/users/u-quiet/blacklist-status").status_code == 401
            put = anon.put("/users/u-quiet/blacklist-status", json={"blacklisted": True})
            assert put.status_code == 200 and put.json() == {"blacklisted": True}
            events = anon.post("/events", json={"id": "u-quiet", "events": [{"event": "Blacklisted"}]})
            assert events.status_code == 200 and "outcomes" not in events.json()
        assert srv.registry.list(email="quiet@example.com").total == 1
        assert srv.registry.status(user_id="u-quiet")["blacklisted"] is True
    finally:
        stop_server(srv)


@pytest.mark.parametrize(("env_key", "args", "expected"), [
    (None, [], "set an API key"),
    ("short", [], "at least 16"),
    (KEY, ["--no-auth"], "contradict"),
    (None, ["--no-auth", "--host", "0.0.0.0"], "loopback"),
])
def test_serve_refuses_unsafe_or_unclear_setups(tmp_path, env_key, args, expected):
    (tmp_path / "gdpr-sweep.toml").write_text(CONFIG)
    env = {"PATH": "/usr/bin:/bin"}
    if env_key:
        env["GDPR_SWEEP_API_KEY"] = env_key
    proc = run_cli(tmp_path / "gdpr-sweep.toml", "serve", "--port", "0", *args, env=env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and proc.stderr.count("\n") == 1


def test_api_key_file(tmp_path):
    (tmp_path / "key").write_text(KEY + "\n")
    srv = start_server(tmp_path / "keyfile", None, "--api-key-file", str(tmp_path / "key"))
    try:
        with httpx.Client(base_url=srv.url, trust_env=False) as c:
            assert c.get("/api/v1.0/blacklists").status_code == 401
            assert c.get("/api/v1.0/blacklists", headers={"X-Api-Key": KEY}).status_code == 200
    finally:
        stop_server(srv)
