"""The sweep flow's report end to end under the Prefect harness: artifacts, deadline, no personal data."""

from __future__ import annotations

import json

import duckdb
import pytest

from gdpr_sweep.demo import prepare_demo
from pipelines.config.settings import load_settings
from pipelines.registry.registry import Registry
from pipelines.reporting import chain
from tests.flows.test_sweep_flow import CONFIG as DEMO_CONFIG
from tests.report_support import PEOPLE, personal_strings, set_created_at, write_config, write_raw
from tests.support.prefect_env import child_env, current_api_url
from tests.support.procs import run_cli


def artifacts_of(state):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[
            state.state_details.flow_run_id])))
    return {a.key: a for a in found}


def blacklisted_personal_data(settings, sample):
    """Emails, names, user ids and device ids of the sample's blacklisted people, read from the raw data."""
    records = Registry(settings.blacklist_db).snapshot().records
    emails = [r.email for r in records if r.email]
    user_ids = [r.user_id for r in records if r.user_id]
    con = duckdb.connect()
    params = {"emails": emails, "ids": user_ids}
    profiles = con.execute(
        f"""SELECT "Name", "UserId", "DeviceIds" FROM read_parquet('{sample}/profiles/*.parquet')
            WHERE lower(trim("Info"."Email")) IN (SELECT unnest($emails)) OR "UserId" IN (SELECT unnest($ids))""",
        params).fetchall()
    events = con.execute(
        f"""SELECT "User"."Name", "DeviceId" FROM read_parquet('{sample}/events/*.parquet')
            WHERE lower(trim("User"."Email")) IN (SELECT unnest($emails)) OR "User"."UserId" IN (SELECT unnest($ids))""",
        params).fetchall()
    con.close()
    found = set(emails) | set(user_ids)
    for name, user_id, devices in profiles:
        found |= {name, user_id, *(devices or [])}
    for name, device in events:
        found |= {name, device}
    return {s for s in found if s and len(s) >= 6}


def test_flow_publishes_artifacts_and_reports_hold_no_personal_data(prefect_harness, tmp_path):
    from flows.sweep import gdpr_sweep

    (tmp_path / "gdpr-sweep.toml").write_text(DEMO_CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    prepare_demo(settings, events=3000, profiles=300)
    state = gdpr_sweep(config=str(settings.config_path), return_state=True)
    assert state.is_completed(), state
    path = state.result()
    report = json.loads(open(path).read())
    folder = settings.report_dir / report["run"]["run_id"]
    assert {p.name for p in folder.iterdir()} == {"report.json", "report.md", "report.html"}
    assert report["totals"]["rows_removed"] > 0 and report["overdue_entries"] == []

    artifacts = artifacts_of(state)
    assert set(artifacts) >= {"gdpr-sweep-report", "gdpr-sweep-dataset-profiles", "gdpr-sweep-dataset-events",
                              "gdpr-sweep-deadline"}
    summary = artifacts["gdpr-sweep-report"]
    assert summary.type == "markdown" and report["integrity"]["report_sha256"] in summary.data
    events_table = artifacts["gdpr-sweep-dataset-events"]
    assert events_table.type == "table"
    rows = json.loads(events_table.data) if isinstance(events_table.data, str) else events_table.data
    assert sum(r["rows_removed"] for r in rows) == report["datasets"][1]["rows_removed"]

    second = gdpr_sweep(config=str(settings.config_path), return_state=True)
    assert second.is_completed() and chain.verify_chain(settings.report_dir).ok

    personal = blacklisted_personal_data(settings, tmp_path / "data" / "sample")
    assert len(personal) > 20  # emails, names, user ids and device ids of the sample's blacklisted people
    texts = [p.read_text(encoding="utf-8").lower() for p in settings.report_dir.rglob("*") if p.is_file()]
    texts += [str(a.data).lower() + str(a.description).lower() for a in artifacts.values()]
    leaks = [s for s in personal if any(s.lower() in t for t in texts)]
    assert leaks == [], f"{len(leaks)} personal values found in reports or artifacts"


@pytest.fixture
def overdue_lake(tmp_path):
    """Bo was blacklisted 30 hours ago; raw snapshots are kept (delete_raw = false) and still hold him."""
    write_config(tmp_path, delete_raw=False)
    write_raw(tmp_path)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    record, _ = Registry(settings.blacklist_db).add(email=PEOPLE["bo"]["email"])
    set_created_at(settings.blacklist_db, record.blacklist_id, hours_ago=30)
    return settings, record


def test_an_entry_older_than_24_hours_whose_data_is_still_held_fails_the_run(prefect_harness, overdue_lake):
    from flows.sweep import gdpr_sweep

    settings, record = overdue_lake
    state = gdpr_sweep(config=str(settings.config_path), return_state=True)
    assert state.is_failed(), state
    assert "deadline missed: 1 blacklist entry older than 24 h with data still present" in state.message
    (run_id,) = [p.name for p in settings.report_dir.iterdir() if p.is_dir()]
    report = chain.load_report(settings.report_dir, run_id)
    assert report["overdue_entries"] == [record.blacklist_id]
    (entry,) = report["entries"]
    assert entry["rows_in_raw_copies"] == {"profiles": 1, "events": 2} and entry["first_verified_gone_at"] is None
    assert "DEADLINE MISSED" in (settings.report_dir / run_id / "report.html").read_text()
    assert "DEADLINE MISSED" in artifacts_of(state)["gdpr-sweep-report"].data
    # the cleaned datasets were still purged and published: only the raw copy holds Bo
    events = str(settings.dataset("events").path / "*.parquet")
    with duckdb.connect() as con:
        left = con.execute(f"""SELECT count(*) FROM read_parquet('{events}')
                               WHERE "User"."Email" = ? OR "DeviceId" = ?""",
                           [PEOPLE["bo"]["email"], PEOPLE["bo"]["device"]]).fetchone()[0]
    assert left == 0


def test_gdpr_sweep_command_exits_1_on_a_missed_deadline(prefect_harness, overdue_lake):
    settings, _ = overdue_lake
    proc = run_cli(settings.config_path, "sweep", env=child_env(current_api_url()))
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("gdpr-sweep: error: deadline missed: 1 blacklist entry older"), last
    assert not any(s.lower() in proc.stderr.lower() + proc.stdout.lower() for s in personal_strings())


def test_the_same_old_entry_is_purged_late_when_raw_copies_are_deleted(prefect_harness, tmp_path):
    from flows.sweep import gdpr_sweep

    write_config(tmp_path, delete_raw=True)
    write_raw(tmp_path)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    record, _ = Registry(settings.blacklist_db).add(email=PEOPLE["bo"]["email"])
    set_created_at(settings.blacklist_db, record.blacklist_id, hours_ago=30)
    state = gdpr_sweep(config=str(settings.config_path), return_state=True)
    assert state.is_completed(), state
    report = json.loads(open(state.result()).read())
    (entry,) = report["entries"]
    assert (entry["status"], entry["deadline_met"], entry["rows_still_present"]) == ("gone late", False, 0)
    assert report["overdue_entries"] == [] and report["raw_copies"]["still_held"] == []
