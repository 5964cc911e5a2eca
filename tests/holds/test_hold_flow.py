"""Retention holds through the real sweep flow: a hold on one dataset keeps exactly its rows, they are
reported `held` in every format, the hold's placement and release are in the report chain, and after
the release the next sweep erases them and says so."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from gdpr_sweep.cli import cli
from pipelines.datasets import storage
from pipelines.registry.registry import Registry
from pipelines.reporting import chain
from tests.holds.lake import orders_rows, run_flow, three_dataset_lake
from tests.report_support import PEOPLE, personal_strings


def rows_of(config) -> list[dict]:
    folder = storage.current_version(config.path)
    files = storage.list_parquet(folder)
    return pa.concat_tables([pq.read_table(folder / f) for f in files]).to_pylist()


def gdpr(settings, *args) -> dict:
    result = CliRunner().invoke(cli, ["--config", str(settings.config_path), *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_hold_on_one_dataset_keeps_exactly_its_rows_until_released(prefect_harness, tmp_path):
    settings = three_dataset_lake(tmp_path)
    anna, _ = Registry(settings.blacklist_db).add(email=PEOPLE["anna"]["email"])
    bo, _ = Registry(settings.blacklist_db).add(email=PEOPLE["bo"]["email"])
    placed = gdpr(settings, "hold", "add", "--blacklist-id", anna.blacklist_id, "--dataset", "orders",
                  "--reason", "invoice retention, HGB 257", "--until", "2030-01-01")

    report = json.loads(Path(run_flow(settings)).read_text())
    by_name = {d.name: d for d in settings.datasets}
    orders = rows_of(by_name["orders"])
    assert [r["EventType"] for r in orders] == ["order-anna-1", "order-anna-2", "order-cleo-1", "order-cleo-2",
                                                "order-anon"]
    assert orders == [r for r in orders_rows() if r["EventType"] in {r["EventType"] for r in orders}]
    assert not any(r["User"] and r["User"]["Email"] == PEOPLE["anna"]["email"] for r in rows_of(by_name["events"]))
    assert all(r["ProfileId"] != "p-anna" for r in rows_of(by_name["profiles"]))  # held in orders only

    entry = {e["blacklist_id"]: e for e in report["entries"]}[anna.blacklist_id]
    assert entry["status"] == "held" and entry["rows_held"] == {"orders": 2}
    assert entry["held"] == [{"dataset": "orders", "rows": 2, "hold_id": placed["HoldId"],
                              "reason": "invoice retention, HGB 257", "until": "2030-01-01T00:00:00.000000Z"}]
    assert entry["rows_removed"]["profiles"] == 1 and entry["first_verified_gone_at"] is None
    assert {e["blacklist_id"]: e for e in report["entries"]}[bo.blacklist_id]["status"] == "gone"
    assert report["overdue_entries"] == [] and report["verification"]["ok"]
    assert report["holds"]["rows_held"] == {"orders": 2}
    # the nightly residual scan sees the held rows and does not call them residuals
    assert report["residuals"]["scanned"] and report["residuals"]["found"] is False
    assert {(f["target"], f["blacklist_id"], f["hold_id"]) for f in report["residuals"]["held_findings"]} == {
        ("orders", anna.blacklist_id, placed["HoldId"])}
    pages = {name: (settings.report_dir / report["run"]["run_id"] / name).read_text()
             for name in ("report.md", "report.html")}
    for text in pages.values():
        assert "held (orders: invoice retention, HGB 257 until 2030-01-01)" in text
        assert not any(s in text for s in personal_strings())

    gdpr(settings, "hold", "release", placed["HoldId"])
    after = json.loads(Path(run_flow(settings)).read_text())
    assert [r["EventType"] for r in rows_of(by_name["orders"])] == ["order-cleo-1", "order-cleo-2", "order-anon"]
    entry = {e["blacklist_id"]: e for e in after["entries"]}[anna.blacklist_id]
    assert entry["status"] == "gone" and entry["rows_removed"] == {"orders": 2} and entry["rows_held"] == {}
    assert [h["hold_id"] for h in after["holds"]["ended_since_last_sweep"]] == [placed["HoldId"]]
    assert "its rows are erased by this run" in (settings.report_dir / after["run"]["run_id"] / "report.md").read_text()

    third = json.loads(Path(run_flow(settings)).read_text())  # settled: nothing more to say or do
    assert third["holds"]["ended_since_last_sweep"] == [] and third["totals"]["rows_removed"] == 0

    kinds = [link.kind for link in chain.read_index(settings.report_dir)]
    assert kinds == ["hold", "sweep", "hold", "sweep", "sweep"]
    assert chain.verify_chain(settings.report_dir).ok
    listed = gdpr(settings, "hold", "list")
    assert listed["items"][0]["State"] == "released" and listed["items"][0]["SettledRun"] == after["run"]["run_id"]


def test_dataset_wide_hold_keeps_that_dataset_only_and_its_end_date_ends_it(prefect_harness, tmp_path):
    settings = three_dataset_lake(tmp_path)
    anna, _ = Registry(settings.blacklist_db).add(email=PEOPLE["anna"]["email"])
    bo, _ = Registry(settings.blacklist_db).add(user_id=PEOPLE["bo"]["user_id"])
    placed = gdpr(settings, "hold", "add", "--dataset", "orders", "--reason", "tax audit 2026", "--until", "2030-01-01")

    report = json.loads(Path(run_flow(settings)).read_text())
    by_name = {d.name: d for d in settings.datasets}
    assert rows_of(by_name["orders"]) == orders_rows()  # every row of the held dataset, exactly as it was
    for name in ("profiles", "events"):  # and nothing held anywhere else
        assert not any(p["email"] in json.dumps(rows_of(by_name[name]), default=str).lower()
                       for k, p in PEOPLE.items() if k != "cleo")
    entries = {e["blacklist_id"]: e for e in report["entries"]}
    assert entries[anna.blacklist_id]["rows_held"] == {"orders": 2} == entries[bo.blacklist_id]["rows_held"]
    assert [h["reason"] for h in entries[bo.blacklist_id]["held"]] == ["tax audit 2026"]
    assert report["holds"]["rows_held"] == {"orders": 4} and report["verification"]["ok"]

    # The end date passes (moved back in the registry file, as time would): the next sweep erases.
    with sqlite3.connect(settings.blacklist_db) as con:
        con.execute("UPDATE holds SET until = ? WHERE hold_id = ?", ["2026-01-01T00:00:00.000000Z", placed["HoldId"]])
    after = json.loads(Path(run_flow(settings)).read_text())
    assert [r["EventType"] for r in rows_of(by_name["orders"])] == ["order-cleo-1", "order-cleo-2", "order-anon"]
    ended = after["holds"]["ended_since_last_sweep"]
    assert [(h["hold_id"], h["ended_at"]) for h in ended] == [(placed["HoldId"], "2026-01-01T00:00:00.000000Z")]
    entries = {e["blacklist_id"]: e for e in after["entries"]}
    assert entries[anna.blacklist_id]["status"] == entries[bo.blacklist_id]["status"] == "gone"
    assert entries[bo.blacklist_id]["rows_removed"] == {"orders": 2}
    assert gdpr(settings, "hold", "list")["items"][0]["State"] == "expired"
