"""The 24-hour deadline per entry, keyed hashes instead of identities, and the report's pages."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from pipelines.core.errors import InputError
from pipelines.reporting import report as reports
from pipelines.reporting.deadline import entry_deadlines
from pipelines.reporting.report_html import render_html
from tests.report_support import PEOPLE, SECRET, Lake, personal_strings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW_TEXT = "2026-11-23T12:00:00.000000Z"


@pytest.mark.parametrize("created, still, previous_gone, status, met, first_gone", [
    ("2026-11-23T02:00:00Z", 0, None, "gone", True, NOW_TEXT),                 # 10 h: gone in time now
    ("2026-11-23T02:00:00Z", 5, None, "open", None, None),                     # 10 h, data left: pending
    ("2026-11-22T02:00:00Z", 5, None, "overdue", False, None),                 # 34 h, data left: overdue
    ("2026-11-22T02:00:00Z", 0, None, "gone late", False, NOW_TEXT),           # 34 h, gone only now
    ("2026-11-22T02:00:00Z", 0, "2026-11-22T20:00:00Z", "gone", True, "2026-11-22T20:00:00Z"),  # carried
    ("2026-11-22T02:00:00Z", 3, "2026-11-22T20:00:00Z", "overdue", False, "2026-11-22T20:00:00Z"),  # came back
])
def test_entry_deadline_states(created, still, previous_gone, status, met, first_gone):
    previous = [{"blacklist_id": "b", "first_verified_gone_at": previous_gone}] if previous_gone else []
    (d,) = entry_deadlines([("b", created)], {"b": still}, previous, NOW, NOW_TEXT, 24.0)
    assert (d.status, d.deadline_met, d.first_verified_gone_at) == (status, met, first_gone)
    assert d.overdue == (status == "overdue")


def test_keyed_hash_normalises_and_depends_on_the_secret():
    a = reports.keyed_hash(SECRET, "email", "  Anna.Berg@Example.COM ")
    assert a == reports.keyed_hash(SECRET, "email", "anna.berg@example.com")
    assert a != reports.keyed_hash(SECRET + b"x", "email", "anna.berg@example.com")
    assert a != reports.keyed_hash(SECRET, "user_id", "anna.berg@example.com")
    assert re.fullmatch(r"[0-9a-f]{64}", a)
    with pytest.raises(InputError):
        reports.keyed_hash(SECRET, "email", "not an email")


def test_entries_record_creation_and_first_verified_gone_across_runs(tmp_path):
    lake = Lake(tmp_path, delete_raw=True)
    anna = lake.forget("anna", hours_ago=3)
    _, first = lake.run()
    (e,) = first["entries"]
    assert e["blacklist_id"] == anna.blacklist_id and e["created_at"] == anna.created_at
    assert e["rows_removed"] == {"profiles": 1, "events": 2} and e["rows_still_present"] == 0
    assert e["first_verified_gone_at"] == first["deadline"]["checked_at"] and e["status"] == "gone"
    assert 2.9 < e["hours_to_gone"] < 3.1 and e["deadline_met"] is True
    assert e["email_hmac"] == reports.keyed_hash(SECRET, "email", PEOPLE["anna"]["email"])
    assert e["user_id_hmac"] is None and first["identity_hash"]["key_id"] == reports.key_id(SECRET)
    assert first["report_version"] == 3 and first["overdue_entries"] == []

    _, second = lake.run()
    (e2,) = second["entries"]
    assert e2["first_verified_gone_at"] == e["first_verified_gone_at"]  # carried forward, not reset
    assert e2["rows_removed"] == {} and second["totals"]["rows_removed"] == 0


def test_raw_copies_still_holding_an_entry_keep_it_open_then_overdue(tmp_path):
    """delete_raw = false: the raw snapshot still holds Anna's rows, so her data is not gone."""
    lake = Lake(tmp_path, delete_raw=False)
    young = lake.forget("anna", hours_ago=2)
    old = lake.forget("bo", hours_ago=30)
    _, report = lake.run()
    by_id = {e["blacklist_id"]: e for e in report["entries"]}
    assert by_id[young.blacklist_id]["status"] == "open"
    assert by_id[young.blacklist_id]["rows_in_raw_copies"] == {"profiles": 1, "events": 2}
    assert by_id[old.blacklist_id]["status"] == "overdue" and by_id[old.blacklist_id]["deadline_met"] is False
    assert report["overdue_entries"] == [old.blacklist_id]
    assert report["deadline"] == {**report["deadline"], "overdue": 1, "open": 1, "gone": 0}
    assert report["verification"]["matches_found"] == 0  # the cleaned datasets are clean all the same
    md = (lake.settings.report_dir / report["run"]["run_id"] / "report.md").read_text()
    assert "DEADLINE MISSED" in md.split("## Datasets")[0] and old.blacklist_id in md.split("## Datasets")[0]


def test_an_old_entry_purged_now_is_gone_late_not_overdue(tmp_path):
    lake = Lake(tmp_path, delete_raw=True)
    lake.forget("bo", hours_ago=30)
    _, report = lake.run()
    (e,) = report["entries"]
    assert (e["status"], e["deadline_met"], e["overdue"]) == ("gone late", False, False)
    assert report["overdue_entries"] == [] and report["deadline"]["gone_late"] == 1


def test_user_id_entries_are_hashed_too(tmp_path):
    lake = Lake(tmp_path, delete_raw=True)
    lake.forget("bo", by="user_id")
    _, report = lake.run()
    (e,) = report["entries"]
    assert e["email_hmac"] is None and e["user_id_hmac"] == reports.keyed_hash(SECRET, "user_id", "u-bo")
    assert sum(e["rows_removed"].values()) == 3


def test_no_file_in_the_report_folder_holds_an_email_name_user_id_or_device_id(tmp_path):
    lake = Lake(tmp_path, delete_raw=False)
    lake.forget("anna", hours_ago=30)
    lake.forget("bo", by="user_id")
    lake.run()
    lake.run()
    files = [p for p in lake.settings.report_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"report.json", "report.md", "report.html", "chain.jsonl"}
    for p in files:
        text = p.read_bytes().decode("utf-8").lower()
        for s in personal_strings():
            assert s.lower() not in text, (p.name, "personal data found")
    assert not (lake.settings.report_dir / "report-secret").exists()


def _report(lake_root):
    lake = Lake(lake_root, delete_raw=False)
    lake.forget("anna", hours_ago=30)
    lake.forget("bo", hours_ago=1)
    return lake.run()[1]


def test_html_is_self_contained_escaped_and_shows_the_charts(tmp_path):
    report = _report(tmp_path)
    page = (tmp_path / "reports" / report["run"]["run_id"] / "report.html").read_text()
    assert page == render_html({k: v for k, v in report.items()})  # a pure function of the report
    assert not re.search(r"""(src|href)\s*=|@import|url\(|<script|<link""", page, re.I)
    assert re.findall(r"https?://[^\s\"']+", page) == ["http://www.w3.org/2000/svg"] * page.count("<svg")
    assert page.count("<svg") == 4  # reasons, two per-day charts, entries by age
    for label in ("Rows removed per dataset and reason", "Rows removed per day or partition",
                  "Blacklist entries by age", "DEADLINE MISSED", "@media print", "2026-11-01"):
        assert label in page
    hostile = json.loads(json.dumps(report))
    hostile["datasets"][0]["name"] = "<img src=x onerror=alert(1)>"
    hostile["datasets"][0]["files"][0]["path"] = "a&b<c>.parquet"
    hostile_page = render_html(hostile)
    assert "<img" not in hostile_page and "&lt;img src=x" in hostile_page and "a&amp;b&lt;c&gt;" in hostile_page


def test_summary_and_artifact_tables_hold_counts_and_ids_only(tmp_path):
    report = _report(tmp_path)
    summary = reports.summary_markdown(report, "/x/report.json")
    assert "DEADLINE MISSED" in summary and report["integrity"]["report_sha256"] in summary
    tables = [reports.dataset_table(d) for d in report["datasets"]] + [reports.deadline_table(report)]
    assert [len(t) for t in tables] == [1, 1, 2]
    assert tables[0][0]["rows_removed"] == 2
    blob = (summary + json.dumps(tables)).lower()
    assert not any(s.lower() in blob for s in personal_strings())


def test_artifact_tables_put_problems_first_and_are_capped():
    entries = [{"blacklist_id": f"b{i}", "created_at": f"2026-11-{10 + i}T00:00:00Z", "rows_still_present": 0,
                "status": status} for i, status in enumerate(["gone", "gone late", "overdue", "open", "gone"])]
    table = reports.deadline_table({"entries": entries}, limit=3)
    assert [r["status"] for r in table] == ["overdue", "open", "gone late"]
    files = [{"path": f"f{i}", "origin": "clean", "rows_in": 2, "rows_out": 2 - (i == 3), "rows_removed": int(i == 3),
              "rewritten": i == 3, "sha256_out": "x"} for i in range(5)]
    assert [r["file"] for r in reports.dataset_table({"files": files}, limit=2)] == ["f3", "f0"]


@pytest.mark.parametrize("created, previous_gone, status, first_gone", [
    ("2026-11-23T02:00:00Z", None, "open", None),                               # young: open, not gone
    ("2026-11-22T02:00:00Z", None, "overdue", None),                            # old: cannot be shown gone
    ("2026-11-22T02:00:00Z", "2026-11-22T20:00:00Z", "overdue", "2026-11-22T20:00:00Z"),
])
def test_an_unreadable_raw_copy_means_no_entry_is_verified_gone(created, previous_gone, status, first_gone):
    previous = [{"blacklist_id": "b", "first_verified_gone_at": previous_gone}] if previous_gone else []
    (d,) = entry_deadlines([("b", created)], {}, previous, NOW, NOW_TEXT, 24.0, unverified=True)
    assert (d.status, d.first_verified_gone_at, d.rows_still_present) == (status, first_gone, 0)
