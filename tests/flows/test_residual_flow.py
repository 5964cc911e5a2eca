"""The residual scan in the nightly flow: findings in every report format and the Prefect artifacts,
the run failed when configured so, the weekly schedule, and `gdpr-sweep scan` in the chain."""

from __future__ import annotations

import json

from pipelines.config.settings import load_settings
from pipelines.reporting import chain
from tests.flows.test_report_flow import artifacts_of
from tests.helpers import EVENT_SCHEMA, make_event, write
from tests.report_support import PEOPLE, Lake, write_config
from tests.support.prefect_env import child_env, current_api_url
from tests.support.procs import run_cli


def test_nightly_scan_reports_residuals_everywhere_and_fails_the_run(prefect_harness, tmp_path):
    from flows.sweep import gdpr_sweep

    lake = Lake(tmp_path, delete_raw=True)
    config = write_config(tmp_path, delete_raw=True, tables={"scan": {"fail_on_residuals": True}})
    anna = PEOPLE["anna"]["email"]
    write(tmp_path / "raw" / "events" / "2026-11-02.parquet",  # Cleo's event whose link carries Anna's address
          [make_event(email=PEOPLE["cleo"]["email"], device_id="dev-cleo-3", EventType=f"mailto:{anna.upper()}")],
          EVENT_SCHEMA)
    record = lake.forget("anna")

    state = gdpr_sweep(config=str(config), return_state=True)
    assert state.is_failed()
    assert "residuals found: 1 blacklist entry in 1 column" in str(state.message) + repr(state.result(raise_on_failure=False))
    settings = load_settings(config)
    (link,) = chain.read_index(settings.report_dir)
    report = chain.load_document(settings.report_dir, link.relpath)
    block = report["residuals"]
    assert block["found"] and block["status"] == "residuals found" and block["reason"] == "schedule weekly: no scan yet"
    assert block["findings"] == [{"target": "events", "kind": "dataset", "column": "EventType", "configured": False,
                                  "match": "email", "blacklist_id": record.blacklist_id, "rows": 1}]
    folder = settings.report_dir / link.run_id
    for page in ("report.md", "report.html"):
        text = (folder / page).read_text()
        assert "RESIDUALS FOUND" in text and "EventType" in text and anna not in text.lower()
    artifacts = artifacts_of(state)
    assert "RESIDUALS FOUND" in artifacts["gdpr-sweep-report"].data
    rows = artifacts["gdpr-sweep-residuals"].data
    rows = json.loads(rows) if isinstance(rows, str) else rows
    assert [(r["column"], r["blacklist_id"], r["rows"]) for r in rows] == [("EventType", record.blacklist_id, 1)]
    assert chain.verify_chain(settings.report_dir).ok

    # the next night: weekly, so not scanned again; the run passes
    second = gdpr_sweep(config=str(config), return_state=True)
    assert second.is_completed()
    block = json.loads(open(second.result()).read())["residuals"]
    assert not block["scanned"] and block["reason"].startswith("schedule weekly: last scan ")

    # on demand: `gdpr-sweep scan`, exit 1 under fail_on_residuals, a chained report, listed
    def cli(*args):
        return run_cli(config, *args, env=child_env(current_api_url()))  # the harness's API: no second one
    scanned = cli("scan")
    assert scanned.returncode == 1 and "gdpr-sweep: error: residuals found" in scanned.stderr
    summary = json.loads(scanned.stdout)
    assert summary["found"] and summary["findings"][0]["column"] == "EventType" and anna not in scanned.stdout
    assert cli("scan", "--no-fail-on-residuals").returncode == 0
    listed = json.loads(cli("report", "list", "--json").stdout)["items"]
    assert [(i["kind"], i["status"]) for i in listed][-2:] == [("residual_scan", "residuals found")] * 2
    assert cli("report", "verify").returncode == 0
