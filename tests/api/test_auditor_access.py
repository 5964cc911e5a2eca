"""The auditor's access over a real `gdpr-sweep serve` on 127.0.0.1 (issue 18): the reports, the index
and the notices are served read-only to a separate auditor key; that key cannot read or change the
blacklist, and the blacklist key is refused where only reports are needed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import KEY, Server, start_server, stop_server
from tests.report_support import PEOPLE, Lake, personal_strings
from tests.support.procs import run_cli

AUDITOR = "auditor-key-abcdefghijklmnop"
BLACKLIST_ROUTES = [
    ("GET", "/api/v1.0/blacklists", None),
    ("POST", "/api/v1.0/blacklists", {"Email": "someone.new@example.com"}),
    ("DELETE", "/api/v1.0/blacklists/9b1f7c52-3c1e-4f0a-8d2b-6a0e4c7d1f35", None),
    ("DELETE", "/api/v1.0/blacklists/c2a4e8d1-5b7f-4c39-9e06-1d3f5a7b9c24/ClearUserData", None),
    ("PUT", "/users/u-new/blacklist-status", {"blacklisted": True}),
    ("GET", "/users/u-anna/blacklist-status", None),
    ("POST", "/events", {"id": "u-new", "events": [{"event": "Blacklisted"}]}),
]


def auditor_key_file(root: Path, key: str = AUDITOR) -> Path:
    path = root / "auditor.key"
    path.write_text(key + "\n")
    os.chmod(path, 0o600)
    return path


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> Iterator[tuple[Server, Lake, str]]:
    """A lake swept once (Anna forgotten), its report and notices, and a server with both keys."""
    root = tmp_path_factory.mktemp("audited")
    lake = Lake(root)
    anna = lake.forget("anna")
    path, _ = lake.run()  # writes the report, then the notices and index.html, as every run does
    srv = start_server(root, KEY, "--auditor-key-file", str(auditor_key_file(root)))
    yield srv, lake, path.parent.name
    stop_server(srv)
    assert "@" not in srv.log and anna.blacklist_id not in srv.log


def test_the_auditor_reads_the_reports_the_chain_and_the_notices(audited):
    srv, lake, run_id = audited
    with srv.client(key=AUDITOR) as auditor:
        listed = auditor.get("/api/reports").json()
        assert [(i["run_id"], i["kind"], i["status"]) for i in listed["items"]] == [(run_id, "sweep", "passed")]
        page = auditor.get(f"/api/reports/{run_id}/report.html")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.text == (lake.settings.report_dir / run_id / "report.html").read_text()
        assert auditor.get(f"/api/reports/{run_id}/report.json").json()["run"]["run_id"] == run_id
        assert auditor.get("/api/reports/verify").json()["ok"] is True
        index = auditor.get("/api/reports/index.html")
        assert index.status_code == 200 and f'href="{run_id}/report.html"' in index.text  # relative: resolves here
        assert index.text == (lake.settings.report_dir / "index.html").read_text()
        sent = auditor.get("/api/reports/notices").json()
        anna = lake.registry.list(email=PEOPLE["anna"]["email"]).items[0]
        assert {(n["blacklist_id"], n["dataset"]) for n in sent["items"]} == {
            (anna.blacklist_id, "profiles"), (anna.blacklist_id, "events")}
        later = auditor.get("/api/reports/notices", params={"since": sent["next_since"]}).json()
        assert later["items"] == [] and later["next_since"] == sent["next_since"]
        assert auditor.get("/api/reports/notices", params={"since": "yesterday"}).status_code == 400
    with srv.client(key="", auth=("auditor", AUDITOR)) as browser:  # HTTP Basic, as a browser sends it
        assert browser.get(f"/api/reports/{run_id}/report.html").status_code == 200
    served = repr(listed) + page.text + repr(sent) + index.text
    assert not [s for s in personal_strings() if s in served]


@pytest.mark.parametrize(("method", "path", "body"), BLACKLIST_ROUTES)
def test_the_auditor_key_cannot_read_or_change_the_blacklist(audited, method, path, body):
    srv, _lake, _run = audited
    before = srv.registry.history()
    with srv.client(key=AUDITOR) as auditor:
        resp = auditor.request(method, path, json=body)
    assert resp.status_code == 403 and "auditor key" in resp.json()["message"]
    assert srv.registry.history() == before


@pytest.mark.parametrize("path", ["/api/reports", "/api/reports/verify", "/api/reports/notices",
                                  "/api/reports/chain.jsonl"])
def test_the_blacklist_key_is_refused_where_only_reports_are_needed(audited, path):
    srv, _lake, _run = audited
    with srv.client() as operator:
        resp = operator.get(path)
        assert resp.status_code == 403 and "auditor key" in resp.json()["message"]
        assert operator.get("/api/v1.0/blacklists").status_code == 200  # the same key where it belongs
    with srv.client(key="") as anon:
        resp = anon.get(path)
    assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Basic")


def test_only_report_files_inside_the_report_folder_are_served(audited):
    srv, lake, _run = audited
    report_dir = lake.settings.report_dir
    (report_dir / "leak.json").symlink_to(lake.settings.blacklist_db)
    (report_dir / "outside.html").symlink_to(lake.config)
    with srv.client(key=AUDITOR) as auditor:
        assert auditor.get("/api/reports/chain.jsonl").status_code == 200
        for path in ("/api/reports/leak.json", "/api/reports/outside.html", "/api/reports/%2e%2e/blacklist.db",
                     "/api/reports/..%2Fgdpr-sweep.toml", "/api/reports/.chain.lock", "/api/reports/no-such.html"):
            resp = auditor.get(path)
            assert resp.status_code == 404, path
            assert "SQLite" not in resp.text and "[sweep]" not in resp.text


def test_without_an_auditor_key_no_report_is_served_and_one_key_cannot_serve_both_roles(server, tmp_path):
    with server.client() as operator:
        assert operator.get("/api/reports").status_code == 403
    with server.client(key="") as anon:
        resp = anon.get("/api/reports")
    assert resp.status_code == 401 and "no auditor access configured" in resp.json()["message"]
    (tmp_path / "gdpr-sweep.toml").write_text((server.root / "gdpr-sweep.toml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("GDPR_SWEEP_")}
    env.update(GDPR_SWEEP_API_KEY=KEY, GDPR_SWEEP_AUDITOR_KEY=KEY)
    same = run_cli(tmp_path / "gdpr-sweep.toml", "serve", "--port", "0", env=env, timeout=120)
    assert same.returncode == 2 and "auditor key must differ" in same.stderr
    assert KEY not in same.stderr + same.stdout


def test_basic_credentials_are_only_a_password(audited):
    srv, _lake, _run = audited
    with srv.client(key="", auth=("auditor", "wrong-password-0123456789")) as wrong:
        assert wrong.get("/api/reports").status_code == 401
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=60, auth=(AUDITOR, "")) as swapped:
        assert swapped.get("/api/reports").status_code == 401  # the key as user name is not the key
