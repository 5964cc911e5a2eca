"""The erasure certificate served to the auditor key over a real `gdpr-sweep serve`: JSON and page
fetched separately verify together offline; the blacklist key is refused; nothing is written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipelines.reporting import certificate
from tests.api.conftest import KEY, Server, start_server, stop_server
from tests.api.test_auditor_access import AUDITOR, auditor_key_file
from tests.report_support import Lake, personal_strings


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[Server, Lake, str]]:
    root = tmp_path_factory.mktemp("certified")
    lake = Lake(root)
    anna = lake.forget("anna")
    lake.run()
    srv = start_server(root, KEY, "--auditor-key-file", str(auditor_key_file(root)))
    yield srv, lake, anna.blacklist_id
    stop_server(srv)
    assert "@" not in srv.log and anna.blacklist_id not in srv.log


def test_the_auditor_gets_a_certificate_that_verifies_offline(served, tmp_path):
    srv, lake, bid = served
    before = sorted(p.relative_to(lake.settings.report_dir) for p in lake.settings.report_dir.rglob("*"))
    with srv.client(key=AUDITOR) as auditor:
        doc = auditor.get(f"/api/reports/certificates/{bid}")
        page = auditor.get(f"/api/reports/certificates/{bid.upper()}", params={"format": "html"})
        assert doc.status_code == 200 and page.status_code == 200, (doc.text, page.text)
        assert page.headers["content-type"].startswith("text/html")
        assert auditor.get("/api/reports/certificates/00000000-0000-0000-0000-000000000000").status_code == 404
        assert auditor.get(f"/api/reports/certificates/{bid}", params={"format": "pdf"}).status_code == 400
    assert {d["name"]: d["outcome"] for d in doc.json()["datasets"]} == {
        "profiles": "removed: 1 row", "events": "removed: 2 rows"}
    (tmp_path / f"certificate-{bid}.json").write_bytes(doc.content)
    (tmp_path / f"certificate-{bid}.html").write_bytes(page.content)
    assert certificate.verify_certificate(tmp_path / f"certificate-{bid}.json", lake.settings.report_dir) == []
    assert not [s for s in personal_strings() if s in doc.text + page.text]
    assert sorted(p.relative_to(lake.settings.report_dir) for p in lake.settings.report_dir.rglob("*")) == before


def test_the_blacklist_key_cannot_read_certificates(served):
    srv, _lake, bid = served
    with srv.client() as operator:
        resp = operator.get(f"/api/reports/certificates/{bid}")
    assert resp.status_code == 403 and "auditor key" in resp.json()["message"]
