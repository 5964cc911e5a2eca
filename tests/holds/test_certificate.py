"""The erasure certificate of one request, through the real sweep flow: an entry swept from three
datasets, one of them held, names each outcome, verifies offline, and fails verification after one
byte of it or of the chain is changed; after the hold's release the next certificate says the rows went."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gdpr_sweep.cli import cli
from pipelines.registry.registry import Registry
from pipelines.reporting import chain
from tests.holds.lake import run_flow, three_dataset_lake
from tests.report_support import PEOPLE, SECRET, personal_strings


def gdpr(settings, *args, code=0):
    result = CliRunner().invoke(cli, ["--config", str(settings.config_path), *args])
    assert result.exit_code == code, result.output
    return result.output


def flip_byte(path: Path, offset: int) -> bytes:
    original = path.read_bytes()
    data = bytearray(original)
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    return original


def test_certificate_names_each_outcome_and_verifies_offline(prefect_harness, tmp_path, monkeypatch):
    monkeypatch.setenv("GDPR_SWEEP_REPORT_SECRET", SECRET.decode())
    settings = three_dataset_lake(tmp_path)
    anna, _ = Registry(settings.blacklist_db).add(email=PEOPLE["anna"]["email"], source="api")
    placed = json.loads(gdpr(settings, "hold", "add", "--blacklist-id", anna.blacklist_id, "--dataset", "orders",
                             "--reason", "invoice retention, HGB 257", "--until", "2030-01-01"))
    run_flow(settings)

    written = json.loads(gdpr(settings, "report", "certificate", "--email", PEOPLE["anna"]["email"].upper()))
    assert written["BlacklistId"] == anna.blacklist_id and written["status"] == "held"
    cert_path, html_path = Path(written["json"]), Path(written["html"])
    cert = json.loads(cert_path.read_text())
    outcomes = {d["name"]: d["outcome"] for d in cert["datasets"]}
    assert outcomes == {"profiles": "removed: 1 row", "events": "removed: 2 rows",
                        "orders": "held: invoice retention, HGB 257 until 2030-01-01T00:00:00.000000Z"}
    assert cert["request"]["channel"] == "API" and cert["request"]["received_at"] == anna.created_at
    assert [r["kind"] for r in cert["runs"]] == ["hold", "sweep"]
    index = {link.run_id: link.report_sha256 for link in chain.read_index(settings.report_dir)}
    assert all(index[r["run_id"]] == r["report_sha256"] for r in cert["runs"])
    assert all("deleted when the run published" in r["how"] for d in cert["datasets"] for r in d["removal"])
    html = html_path.read_text()
    assert "held: invoice retention, HGB 257" in html and placed["HoldId"] in html
    for text in (cert_path.read_text(), html):
        assert not any(s in text for s in personal_strings())
    assert "certificate verified" in gdpr(settings, "report", "verify-certificate", str(cert_path))
    assert "certificate verified" in gdpr(settings, "report", "verify-certificate", str(html_path))

    # one byte of the certificate, of its page, of a cited report, of the chain index
    sweep_report = settings.report_dir / cert["runs"][-1]["report"]
    for path, offset in ((cert_path, cert_path.read_text().index('"removed: 1 row"') + 10),
                         (html_path, 200), (sweep_report, 100), (settings.report_dir / chain.INDEX_NAME, 30)):
        original = flip_byte(path, offset)
        assert "PROBLEM" in gdpr(settings, "report", "verify-certificate", str(cert_path), code=1), path
        path.write_bytes(original)
    gdpr(settings, "report", "verify-certificate", str(cert_path))

    # a forged certificate re-sealed with a matching hash still disagrees with the chain
    from pipelines.reporting.certificate import seal
    forged = {k: v for k, v in cert.items() if k != "integrity"}
    forged["datasets"][2]["outcome"] = "removed: 2 rows"
    cert_path.write_bytes(chain.pretty_bytes(seal(forged, html)))
    out = gdpr(settings, "report", "verify-certificate", str(cert_path), code=1)
    assert "'datasets' differs from what the report chain says" in out

    gdpr(settings, "hold", "release", placed["HoldId"])
    run_flow(settings)
    again = json.loads(Path(json.loads(gdpr(settings, "report", "certificate", "--blacklist-id",
                                            anna.blacklist_id))["json"]).read_text())
    orders = {d["name"]: d for d in again["datasets"]}["orders"]
    assert orders["outcome"] == "removed: 2 rows" and orders["held"] is None
    assert [h["action"] for h in orders["hold_releases"]] == ["release"]
    assert again["completion"]["status"] == "gone" and again["completion"]["deadline_met"] is True
    assert [r["kind"] for r in again["runs"]] == ["hold", "sweep", "hold", "sweep"]
    gdpr(settings, "report", "verify-certificate", written["json"])
    gdpr(settings, "report", "certificate", "--blacklist-id", "00000000-0000-0000-0000-000000000000", code=3)
    gdpr(settings, "report", "certificate", code=2)
