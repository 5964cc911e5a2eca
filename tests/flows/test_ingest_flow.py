"""The ingest flow under the Prefect harness, on generated data, checked against the §3 oracle."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.datasets import storage
from pipelines.registry.registry import Registry
from tests.flows.conftest_lake import clean_rows, generated_lake, logical, oracle_entries
from tests.oracle import expected_kept, norm_email


def test_ingest_flow_drops_what_the_oracle_drops_and_ignores_a_duplicate(prefect_harness, tmp_path):
    from flows.ingest import ingest

    settings = generated_lake(tmp_path)
    profiles, events = settings.dataset("profiles"), settings.dataset("events")
    # someone still in the cleaned profiles, with devices, asks to be forgotten after the sweep
    person = next(r for r in clean_rows(profiles) if (r["Info"] or {}).get("Email") and r["DeviceIds"])
    registry = Registry(settings.blacklist_db)
    registry.add(email=person["Info"]["Email"], source="cli")
    # a new batch: every raw event again, which holds blacklisted people's events
    raw = sorted(settings.dataset("events").source.glob("*.parquet"))
    batch = tmp_path / "landing" / "batch-0001.parquet"
    batch.parent.mkdir()
    table = pa.concat_tables([pq.read_table(f) for f in raw])
    pq.write_table(table, batch)
    rows = table.to_pylist()

    summary = ingest(dataset="events", batch=str(batch), config=str(settings.config_path))

    entries = oracle_entries(registry.snapshot().records)
    _, kept = expected_kept(entries, logical(clean_rows(profiles), "profiles"), logical(rows, "events"))
    assert summary["rows_appended"] == len(kept) and summary["rows_dropped"] == len(rows) - len(kept)
    report = json.loads(open(summary["report"]).read())
    assert report["dropped_by_reason"]["email"] > 0 and report["dropped_by_reason"]["linked_device"] > 0
    written = storage.current_version(events.path) / summary["file"]
    assert pq.read_table(written).to_pylist() == [rows[i] for i in kept]
    report_text = open(summary["report"]).read()
    assert json.loads(report_text)["verification"]["ok"]
    blacklisted = {e["email"] for e in entries if e["email"]}
    assert not any(e in report_text.lower() for e in blacklisted)
    assert norm_email(person["Info"]["Email"]) not in report_text.lower()

    version = storage.current_version(events.path)
    again = ingest(dataset="events", batch=str(batch), config=str(settings.config_path))
    assert again["duplicate"] and again["rows_appended"] == 0
    assert storage.current_version(events.path) == version


def test_sweep_flow_reports_raw_verdicts_and_deletes_raw_on_request(prefect_harness, tmp_path):
    from flows.sweep import gdpr_sweep

    settings = generated_lake(tmp_path, profiles=200, events=2000)
    raw = sorted(str(p) for ds in settings.datasets for p in ds.source.glob("*.parquet"))
    kept = json.loads(open(gdpr_sweep(config=str(settings.config_path), delete_raw=False)).read())
    held = {h["path"]: h for h in kept["raw_copies"]["held"]}
    assert sorted(held) == raw == sorted(kept["raw_copies"]["still_held"])
    holding = [h for h in held.values() if h["blacklisted_rows"]]
    assert holding and all(h["verdict"].startswith("HOLDS") for h in holding)
    assert all(h["verdict"].startswith("holds no") for h in held.values() if h["blacklisted_rows"] == 0)

    deleted = json.loads(open(gdpr_sweep(config=str(settings.config_path), delete_raw=True)).read())
    assert sorted(deleted["raw_copies"]["deleted"]) == raw and deleted["raw_copies"]["held"] == []
    assert not [p for ds in settings.datasets for p in ds.source.glob("*.parquet")]
