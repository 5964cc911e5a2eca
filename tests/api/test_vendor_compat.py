"""Issue 14, "Vendor APIs": what integrators moving from Optimizely or CrossEngage send, against the
real `gdpr-sweep serve` process (docs/decisions/0232-vendor-api-compatibility.md)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.procs import run_cli

BLACKLISTS = "/api/v1.0/blacklists"


def _add(client, **body) -> dict:
    resp = client.post(BLACKLISTS, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_post_without_a_content_type_is_read_as_json(server, client):
    body = json.dumps({"Email": "no-type@example.com", "Scope": "DefaultScope"}).encode()
    resp = client.post(BLACKLISTS, content=body)  # httpx sends no Content-Type for raw bytes
    assert "content-type" not in resp.request.headers
    assert resp.status_code == 201, resp.text
    assert server.registry.list(email="no-type@example.com").total == 1
    # CrossEngage events too
    events = client.post("/events", content=json.dumps({"id": "no-type-user", "events": [{"event": "Blacklisted"}]}))
    assert events.status_code == 200, events.text
    assert server.registry.status(user_id="no-type-user")["blacklisted"]


def test_a_future_upper_bound_on_created_at_is_a_normal_query(client):
    item = _add(client, Email="future-bound@example.com", Scope="futuresite")
    flt = "Scope eq 'futuresite' and CreatedAt lt '2999-01-01T00:00:00Z'"
    resp = client.get(BLACKLISTS, params={"$filter": flt})
    assert resp.status_code == 200, resp.text
    assert [i["BlacklistId"] for i in resp.json()["items"]] == [item["BlacklistId"]]
    later = client.get(BLACKLISTS, params={"$filter": "Scope eq 'futuresite' and CreatedAt gt '2999-01-01T00:00:00Z'"})
    assert later.status_code == 200 and later.json()["total"] == 0


@pytest.mark.parametrize("name", [" Blacklisted", "Blacklisted ", "\u00a0Blacklisted\u3000", "\ufeffBlacklisted\u200b"])
def test_a_padded_blacklisted_event_is_the_command_not_ignored(server, client, name):
    user = f"padded-{uuid.uuid4().hex[:8]}"
    resp = client.post("/events", json={"id": user, "events": [{"event": name}]})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["commands"], resp.json()["ignored"]) == (1, 0)
    assert server.registry.status(user_id=user)["blacklisted"]


def test_a_padded_case_variant_is_still_refused(server, client):
    resp = client.post("/events", json={"id": "padded-case", "events": [{"event": " blacklisted "}]})
    assert resp.status_code == 400 and "case-sensitive" in resp.json()["message"]
    assert not server.registry.status(user_id="padded-case")["blacklisted"]


@pytest.mark.parametrize("variant", ["defaultscope", "DEFAULTSCOPE", "Defaultscope"])
def test_default_scope_case_variants_are_one_entry(server, client, variant):
    email = f"scope-{variant.lower()}-{variant[:2].lower()}@example.com"
    first = _add(client, Email=email, Scope="DefaultScope")
    again = client.post(BLACKLISTS, json={"Email": email, "Scope": variant})
    assert again.status_code == 201, again.text
    assert (again.json()["BlacklistId"], again.json()["Scope"], again.json()["Created"]) == (
        first["BlacklistId"], "DefaultScope", False)
    assert server.registry.list(email=email).total == 1


@pytest.mark.parametrize(("skip", "top", "status"), [
    ("9999", "1", 400), (None, "10000", 400), ("5000", "5000", 400), ("9998", "1", 200), (None, "9999", 200),
])
def test_paging_needs_skip_plus_top_below_10000(client, skip, top, status):
    params = {"$top": top} | ({"$skip": skip} if skip is not None else {})
    resp = client.get(BLACKLISTS, params=params)
    assert resp.status_code == status, resp.text
    if status == 400:
        assert "skip + top < 10000" in resp.json()["message"]


def test_trailing_slash_and_case_variants_of_paths_route(server, client):
    bid = _add(client, Email="slash@example.com")["BlacklistId"]
    resp = client.delete(f"{BLACKLISTS}/{bid}/")
    assert resp.status_code == 200, resp.text
    assert resp.json() == f"Successfully removed blacklist item {bid}"
    bid = _add(client, Email="slash@example.com")["BlacklistId"]
    assert client.delete(f"/api/v1.0/Blacklists/{bid}").status_code == 200
    assert client.get("/API/V1.0/BLACKLISTS/", params={"$top": "1"}).status_code == 200
    assert client.post("/api/v1.0/Blacklists/", json={"Email": "slash2@example.com"}).status_code == 201
    # ClearUserData spelled in lower case reaches the operation (here: no such entry, its own 404)
    missing = client.delete(f"{BLACKLISTS}/{uuid.uuid4()}/clearuserdata/")
    assert missing.status_code == 404 and "blacklist entry" in missing.json()["message"]
    # CrossEngage: the fixed segments fold, the user id keeps its case
    assert client.put("/Users/CaseUser/Blacklist-Status/", json={"blacklisted": True}).status_code == 200
    assert server.registry.status(user_id="CaseUser")["blacklisted"]
    assert not server.registry.status(user_id="caseuser")["blacklisted"]
    assert client.post("/Events/", json={"id": "CaseUser", "events": [{"event": "Other"}]}).status_code == 200
    # nothing redirects, and an unknown path is still 404
    assert client.get("/api/v1.0/blacklist").status_code == 404


def test_a_listed_item_posted_back_is_accepted_and_answers_201(server, client):
    _add(client, Email="echo@example.com", Scope="echosite", UserId="echo-user")
    listed = client.get(BLACKLISTS, params={"$filter": "Email eq 'echo@example.com'"}).json()["items"][0]
    assert set(listed) >= {"BlacklistId", "CreatedAt", "Source"}
    resp = client.post(BLACKLISTS, json=listed)
    assert resp.status_code == 201, resp.text
    assert (resp.json()["BlacklistId"], resp.json()["Created"]) == (listed["BlacklistId"], False)
    # read-only fields are ignored: an echoed item with another id and time creates the server's own
    echoed = {**listed, "Email": "echo2@example.com", "BlacklistId": str(uuid.uuid4()),
              "CreatedAt": "2001-01-01T00:00:00Z", "Source": "import", "Created": False}
    new = client.post(BLACKLISTS, json=echoed)
    assert new.status_code == 201 and new.json()["Created"] is True
    assert new.json()["BlacklistId"] != echoed["BlacklistId"]
    assert new.json()["CreatedAt"] != echoed["CreatedAt"] and new.json()["Source"] == "api"
    assert server.registry.list(email="echo2@example.com").total == 1


BAD_EMAILS = {
    "two-at": "a@@example.com",
    "no-dot": "a@b",
    "emoji-domain": "x@\U0001f600.com",
    "space-inside": "an na@example.com",
    "tab-inside": "anna@exa\tmple.com",
    "zero-width-inside": "an\u200bna@example.com",
    "too-long": "x" * 250 + "@example.com",
    "empty-local": "@example.com",
    "no-at": "anna.example.com",
    "hyphen-label": "anna@-example.com",
    "underscore-domain": "anna@ex_ample.com",
    "trailing-dot": "anna@example.com.",
    "numeric-tld": "anna@192.0.2.1",
    "address-literal": "anna@[192.0.2.1]",
    "bad-a-label": "anna@xn--zz.com",
}


@pytest.mark.parametrize("email", BAD_EMAILS.values(), ids=BAD_EMAILS.keys())
def test_undeliverable_emails_are_400_with_a_clear_message(server, client, email):
    before = server.registry.history()
    resp = client.post(BLACKLISTS, json={"Email": email})
    assert resp.status_code == 400, resp.text
    message = resp.json()["message"]
    assert message.startswith(("invalid email: ", "invalid request: Email: String should have at most 254"))
    assert email not in message
    events = client.post("/events", json={"email": email, "events": [{"event": "Blacklisted"}]})
    assert events.status_code == 400 and "mail" in events.json()["message"]
    assert server.registry.history() == before


@pytest.mark.parametrize("email", ["anna@example.com", "o'brien+tag@sub.example.co.uk", "zoë@bücher.de",
                                   "x@xn--bcher-kva.de", "a@b.io", "ANNA@EXAMPLE.COM"])
def test_deliverable_emails_are_accepted(client, email):
    assert client.post(BLACKLISTS, json={"Email": email, "Scope": "emailok"}).status_code == 201


def test_the_cli_and_imports_refuse_the_same_emails(server, tmp_path):
    add = run_cli(server.config, "blacklist", "add", "--email", "a@@example.com")
    assert add.returncode == 2 and "invalid email" in add.stderr and "Traceback" not in add.stderr
    doc = tmp_path / "list.json"
    doc.write_text(json.dumps({"items": [{"Email": "fine@example.com"}, {"Email": "x@\U0001f600.com"}]}))
    imported = run_cli(server.config, "blacklist", "import", str(doc))
    assert imported.returncode == 2 and "invalid email" in imported.stderr
    assert server.registry.list(email="fine@example.com").total == 0  # all or nothing


def test_whitelisting_one_business_unit_of_an_everywhere_entry_says_what_happened(server, client):
    entry = _add(client, Email="everywhere@example.com")  # no scope: every scope
    resp = client.post("/events", json={"email": "everywhere@example.com", "businessUnit": "shop",
                                        "events": [{"event": "Whitelisted"}]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["outcome"] == "not blacklisted in that scope; blacklisted in every scope"
    assert server.registry.get(entry["BlacklistId"]).scope is None  # still blacklisted everywhere
    plain = client.post("/events", json={"email": "scoped-only@example.com", "businessUnit": "shop",
                                         "events": [{"event": "Blacklisted"}, {"event": "Whitelisted"}]})
    assert plain.json()["outcome"] in ("blacklisted", "not blacklisted")
    user = client.post("/events", json={"id": "outcome-user", "events": [{"event": "Blacklisted"}]})
    assert user.json()["outcome"] == "blacklisted"
