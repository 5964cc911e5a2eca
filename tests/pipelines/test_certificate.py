"""The erasure certificate built from a hand-made report chain (no flow): each outcome, the newest
residual scan's findings only, and verification that fails on a changed byte or a re-sealed forgery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.reporting import certificate, chain
from pipelines.reporting.certificate_html import render_html

BID = "6c8afbec-ece6-47e8-9c08-ae34fdbc66bf"
OTHER = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
DATASETS = [certificate.dataset_descriptor("profiles", "local"),
            certificate.dataset_descriptor("events", "s3"),
            certificate.dataset_descriptor("orders", "delta")]


def entry(bid: str, removed: dict[str, int], status: str = "gone") -> dict:
    return {"blacklist_id": bid, "created_at": "2026-12-01T10:00:00.000000Z", "scope": None,
            "email_hmac": "ab" * 32, "user_id_hmac": None, "rows_removed": removed, "status": status, "held": [],
            "rows_held": {}, "first_verified_gone_at": "2026-12-02T02:31:00.000000Z", "hours_to_gone": 16.5,
            "deadline_met": True, "deadline_from": "2026-12-01T10:00:00.000000Z"}


def sweep(report_dir: Path, run_id: str, entries: list[dict]) -> None:
    doc = {"report_version": 2, "run": {"run_id": run_id, "started_at": f"{run_id}-start",
                                        "finished_at": "2026-12-02T02:31:00.000000Z"},
           "deadline_hours": 24, "entries": entries}
    chain.write_linked(report_dir, doc, lambda linked: {"report.md": "# run\n", "report.html": "<p>run</p>\n"})


def scan(report_dir: Path, run_id: str, findings: list[dict]) -> None:
    doc = {"report_version": 1, "kind": "residual_scan", "run": {"run_id": run_id},
           "residuals": {"scanned": True, "scanned_at": "2026-12-03T00:00:00.000000Z", "findings": findings}}
    chain.write_linked(report_dir, doc, lambda linked: {"residual-scan.md": "# scan\n"},
                       f"{chain.OPERATIONS_DIR}/{run_id}/residual-scan.json")


def finding(bid: str, target: str, column: str, rows: int, kind: str = "dataset") -> dict:
    return {"target": target, "kind": kind, "column": column, "configured": False, "match": "email in text",
            "blacklist_id": bid, "rows": rows}


@pytest.fixture
def report_dir(tmp_path) -> Path:
    folder = tmp_path / "reports"
    sweep(folder, "20261202T020000000000Z", [entry(BID, {"profiles": 1, "events": 3}), entry(OTHER, {"orders": 4})])
    scan(folder, "20261203T000000000000Z-scan", [finding(BID, "events", "Payload", 2), finding(OTHER, "orders", "Memo", 1),
                                                 finding(BID, "lake/exports", "Contact", 5, kind="folder")])
    return folder


def build(report_dir: Path) -> dict:
    return certificate.build_certificate(report_dir, BID, "api", DATASETS, "2026-12-04T00:00:00.000000Z")


def test_each_dataset_named_with_its_outcome(report_dir):
    cert = build(report_dir)
    assert {d["name"]: d["outcome"] for d in cert["datasets"]} == {
        "profiles": "removed: 1 row",
        "events": "removed: 3 rows; residual found in column Payload (2 rows, scan 20261203T000000000000Z-scan)",
        "orders": "none held",
    }
    assert [d["storage"] for d in cert["datasets"]] == ["local", "s3", "delta"]
    assert "vacuumed" in certificate._how("delta", chain.SWEEP)
    assert cert["request"] == {"scope": None, "every_scope": True, "received_at": "2026-12-01T10:00:00.000000Z",
                               "channel": "API", "email_hmac": "ab" * 32, "user_id_hmac": None}
    assert cert["residual_scan"]["findings"][1] == {"target": "lake/exports", "kind": "folder", "column": "Contact",
                                                    "rows": 5}
    assert [r["kind"] for r in cert["runs"]] == ["sweep", "residual_scan"]
    assert cert["completion"]["status"] == "gone" and cert["completion"]["deadline_met"] is True
    page = render_html(cert)
    assert "residual found in column Payload" in page and "Memo" not in page  # another entry's finding


def test_a_later_clean_scan_supersedes_an_earlier_finding(report_dir):
    scan(report_dir, "20261204T000000000000Z-scan", [])
    cert = build(report_dir)
    assert cert["residual_scan"]["found"] is False
    assert {d["name"]: d["outcome"] for d in cert["datasets"]}["events"] == "removed: 3 rows"


def test_unknown_entry_is_not_found(report_dir):
    with pytest.raises(LookupError):
        certificate.build_certificate(report_dir, "00000000-0000-0000-0000-000000000000", "cli", DATASETS, "now")


def written(report_dir: Path, tmp_path: Path) -> tuple[Path, Path, dict]:
    content = build(report_dir)
    html = render_html(content)
    json_path, html_path = certificate.write(tmp_path / "out", certificate.seal(content, html), html)
    return json_path, html_path, json.loads(json_path.read_text())


def test_verifies_and_fails_after_one_byte_of_it_or_of_the_chain(report_dir, tmp_path):
    json_path, html_path, _ = written(report_dir, tmp_path)
    assert certificate.verify_certificate(json_path, report_dir) == []
    assert certificate.verify_certificate(html_path, report_dir) == []
    scan_doc = report_dir / chain.OPERATIONS_DIR / "20261203T000000000000Z-scan" / "residual-scan.json"
    for path in (json_path, html_path, scan_doc, report_dir / chain.INDEX_NAME,
                 report_dir / "20261202T020000000000Z" / "report.json"):
        original = path.read_bytes()
        for offset in (len(original) // 3, len(original) - 3):
            data = bytearray(original)
            data[offset] ^= 0x01
            path.write_bytes(bytes(data))
            assert certificate.verify_certificate(json_path, report_dir), (path.name, offset)
        path.write_bytes(original)
    assert certificate.verify_certificate(json_path, report_dir) == []


def test_a_resealed_forgery_disagrees_with_the_chain(report_dir, tmp_path):
    json_path, _, doc = written(report_dir, tmp_path)
    content = {k: v for k, v in doc.items() if k != "integrity"}
    content["datasets"][1]["outcome"] = "removed: 3 rows"  # hide the residual finding
    html = render_html(content)
    certificate.write(tmp_path / "out", certificate.seal(content, html), html)
    assert certificate.verify_certificate(json_path, report_dir) == [
        f"{json_path}: 'datasets' differs from what the report chain says"]

