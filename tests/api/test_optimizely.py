"""Optimizely Profile Store paths, with the request bodies of the source document (seeds/003)."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from pipelines.config.settings import load_settings
from pipelines.datasets import storage
from tests.helpers import EVENT_SCHEMA, PROFILE_SCHEMA, make_event, make_profile, read_dataset, write
from tests.support.procs import run_cli

# The POST body byte for byte as the source document prints it (trailing spaces included). The page's
# address went through an email obfuscator ("[email\u00a0protected]"), which is not an email: the API
# refuses it and stores nothing.
SEED_POST_BODY = ('{ \n           "Email" : "[email\u00a0protected]", \n           "Scope" : "DefaultScope" \n'
                  '         }').encode()
# The same body with a real address in its place.
POST_BODY = SEED_POST_BODY.replace("[email\u00a0protected]".encode(), b"visitor@example.com")
JSON = {"Content-Type": "application/json"}


def test_seed_post_body_with_the_obfuscated_address_is_400_and_nothing_stored(server, client):
    before = server.registry.list(top=9_999).total
    resp = client.post("/api/v1.0/blacklists", content=SEED_POST_BODY, headers=JSON)
    assert resp.status_code == 400
    assert resp.json()["message"].startswith("invalid email")
    assert server.registry.list(top=9_999).total == before


def test_post_seed_body_is_201_with_the_new_item_then_listed(server, client):
    resp = client.post("/api/v1.0/blacklists", content=POST_BODY, headers=JSON)
    assert resp.status_code == 201
    item = resp.json()
    assert uuid.UUID(item["BlacklistId"])
    assert (item["Email"], item["Scope"], item["Source"], item["Created"]) == (
        "visitor@example.com", "DefaultScope", "api", True)
    # the same store as the CLI
    assert server.registry.get(item["BlacklistId"]).email == "visitor@example.com"
    again = client.post("/api/v1.0/blacklists", content=POST_BODY, headers=JSON)
    # 201 again, as the vendor's clients expect; `Created` says it already existed
    assert again.status_code == 201 and again.json()["BlacklistId"] == item["BlacklistId"]
    assert again.json()["Created"] is False

    listed = client.get("/api/v1.0/blacklists", params={"$filter": "Email eq 'visitor@example.com'"})
    assert listed.status_code == 200
    body = listed.json()
    assert (body["total"], body["count"]) == (1, 1)
    assert {k: body["items"][0][k] for k in ("BlacklistId", "Email", "Scope")} == {
        "BlacklistId": item["BlacklistId"], "Email": "visitor@example.com", "Scope": "DefaultScope"}
    # trailing slash as in the document's `api/v1.0/blacklists/`
    assert client.get("/api/v1.0/blacklists/", params={"$filter": "Email eq 'visitor@example.com'"}).json() == body


def test_filter_skip_top_order_by(client):
    emails = [f"page{i}@example.com" for i in range(5)]
    for i, email in enumerate(emails):
        assert client.post("/api/v1.0/blacklists", json={"Email": email, "Scope": "pagingsite"}).status_code == 201
        client.post("/api/v1.0/blacklists", json={"Email": email, "Scope": f"other{i}"})
    flt = "Scope eq 'pagingsite'"
    page = client.get("/api/v1.0/blacklists", params={"$filter": flt, "$orderBy": "Email desc",
                                                      "$skip": "1", "$top": "2"}).json()
    assert page["total"] == 5 and page["count"] == 2
    assert [i["Email"] for i in page["items"]] == [emails[3], emails[2]]
    asc = client.get("/api/v1.0/blacklists", params={"$filter": flt, "$orderBy": "Email"}).json()
    assert [i["Email"] for i in asc["items"]] == emails
    both = client.get("/api/v1.0/blacklists",
                      params={"$filter": f"Email eq '{emails[1]}' and Scope eq 'other1'"}).json()
    assert [(i["Email"], i["Scope"]) for i in both["items"]] == [(emails[1], "other1")]
    # keywords are case-insensitive, values exact (emails normalised as stored)
    upper = client.get("/api/v1.0/blacklists", params={"$filter": f"email EQ '{emails[1].upper()}' AND "
                                                       "scope eq 'pagingsite'"}).json()
    assert upper["total"] == 1


@pytest.mark.parametrize("params", [
    {"$filter": "Email ne 'a@example.com'"},
    {"$filter": "Email eq 'a@example.com' or Scope eq 'x'"},
    {"$filter": "(Scope eq 'x')"},
    {"$filter": "Name eq 'x'"},
    {"$filter": "Scope eq 'unterminated"},
    {"$filter": "Scope eq 'a' and Scope eq 'b'"},
    {"$filter": ""},
    {"$filter": "Email eq 'not an email'"},
    {"$orderBy": "Name desc"},
    {"$orderBy": "Email sideways"},
    {"$top": "0"},
    {"$top": "-1"},
    {"$top": "ten"},
    {"$skip": "9999", "$top": "2"},
    {"$fitler": "Scope eq 'x'"},
])
def test_bad_query_is_400_with_a_message(client, params):
    resp = client.get("/api/v1.0/blacklists", params=params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"]
    assert "not an email" not in resp.json()["message"]


def test_delete_is_200_then_404(server, client):
    bid = client.post("/api/v1.0/blacklists", json={"Email": "leaving@example.com"}).json()["BlacklistId"]
    resp = client.delete(f"/api/v1.0/blacklists/{bid}")
    assert resp.status_code == 200 and bid in resp.json()
    assert server.registry.list(email="leaving@example.com").total == 0
    gone = client.delete(f"/api/v1.0/blacklists/{bid}")
    assert gone.status_code == 404 and gone.json()["message"]
    assert client.delete("/api/v1.0/blacklists/not-a-uuid").status_code == 404
    assert client.delete(f"/api/v1.0/blacklists/{uuid.uuid4()}").status_code == 404


def _lake(server):
    """Cleaned datasets with Anna's profile and events next to Bob's."""
    root = server.root
    write(root / "clean/profiles/p1.parquet",
          [make_profile("anna@example.com", device_ids=["d1"], profile_id="a1"),
           make_profile("bob@example.com", device_ids=["d2"], profile_id="b1")], PROFILE_SCHEMA)
    write(root / "clean/events/e1.parquet",
          [make_event("anna@example.com"), make_event(device_id="d1", anonymous=True),
           make_event("bob@example.com", device_id="d2")], EVENT_SCHEMA)
    return load_settings(server.config)


def test_clear_user_data_200_404_and_409_while_a_sweep_runs(server, client):
    settings = _lake(server)
    anna = client.post("/api/v1.0/blacklists", json={"Email": "anna@example.com"}).json()["BlacklistId"]
    nobody = client.post("/api/v1.0/blacklists", json={"Email": "nobody@example.com"}).json()["BlacklistId"]

    with storage.run_lock(settings.work_dir):  # a sweep holds the lock
        busy = client.delete(f"/api/v1.0/blacklists/{anna}/ClearUserData")
        assert busy.status_code == 409 and busy.json()["message"]
        # the registry stays usable meanwhile
        assert client.get("/api/v1.0/blacklists", params={"$top": "1"}).status_code == 200

    missing = client.delete(f"/api/v1.0/blacklists/{nobody}/ClearUserData")
    assert missing.status_code == 404 and "@" not in missing.json()["message"]
    assert client.delete(f"/api/v1.0/blacklists/{uuid.uuid4()}/ClearUserData").status_code == 404

    done = client.delete(f"/api/v1.0/blacklists/{anna}/ClearUserData")
    assert done.status_code == 200, done.text
    assert done.json() == f"Successfully removed data for blacklist item {anna}"
    profiles = read_dataset(settings.dataset("profiles"))
    assert [(r["Info"] or {}).get("Email") for r in profiles.to_pylist()] == ["bob@example.com"]
    events = read_dataset(settings.dataset("events")).to_pylist()
    assert [((r["User"] or {}).get("Email"), r["DeviceId"]) for r in events] == [("bob@example.com", "d2")]
    assert (server.root / done.headers["X-Gdpr-Sweep-Report"]).exists()


def test_unknown_query_parameters_are_named_only_when_plain(client):
    resp = client.get("/api/v1.0/blacklists", params={"$fitler": "x", "anna@example.com": "1"})
    assert resp.status_code == 400
    assert "'$fitler'" in resp.json()["message"] and "anna" not in resp.json()["message"]
    assert client.delete(f"/api/v1.0/blacklists/{uuid.uuid4()}", params={"force": "1"}).status_code == 400


def test_same_store_as_the_cli(server, client):
    def cli(*args: str) -> subprocess.CompletedProcess:
        proc = run_cli(server.config, *args, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc

    from_cli = json.loads(cli("blacklist", "add", "--email", "cli-added@example.com").stdout)
    listed = client.get("/api/v1.0/blacklists", params={"$filter": "Email eq 'cli-added@example.com'"}).json()
    assert [i["BlacklistId"] for i in listed["items"]] == [from_cli["BlacklistId"]]
    assert listed["items"][0]["Source"] == "cli"

    from_api = client.post("/api/v1.0/blacklists", json={"Email": "api-added@example.com"}).json()
    page = json.loads(cli("blacklist", "list", "--email", "api-added@example.com").stdout)
    assert [(i["BlacklistId"], i["Source"]) for i in page["items"]] == [(from_api["BlacklistId"], "api")]
    assert client.delete(f"/api/v1.0/blacklists/{from_cli['BlacklistId']}").status_code == 200
    assert json.loads(cli("blacklist", "list", "--email", "cli-added@example.com").stdout)["total"] == 0
