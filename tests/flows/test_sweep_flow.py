"""The sweep flow end to end under the Prefect harness, on a small generated dataset."""

from __future__ import annotations

import json

import duckdb
import pytest

from gdpr_sweep.demo import prepare_demo
from gdpr_sweep.registry import Registry
from pipelines.settings import load_settings
from tests.helpers import lake_config  # noqa: E402

CONFIG = lake_config("data/sample")


@pytest.fixture
def demo_settings(tmp_path):
    (tmp_path / "gdpr-sweep.toml").write_text(CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    prepare_demo(settings, events=20_000, profiles=800)
    return settings


def test_sweep_flow_purges_reports_and_is_idempotent(prefect_harness, demo_settings):
    from flows.sweep import gdpr_sweep

    settings = demo_settings
    report = json.loads(open(gdpr_sweep(config=str(settings.config_path))).read())
    assert report["verification"]["ok"] and report["verification"]["matches_found"] == 0
    assert report["totals"]["rows_removed"] > 0
    for d in report["datasets"]:
        assert d["rows_in"] == d["rows_out"] + d["rows_removed"]
    assert report["blacklist"]["version"] > 0

    entries = Registry(settings.blacklist_db).snapshot().records
    emails = [r.email for r in entries if r.email]
    text = (settings.report_dir / report["run"]["run_id"] / "report.md").read_text()
    raw = json.dumps(report)
    assert not any(e in raw.lower() or e in text.lower() for e in emails)

    unscoped = [r.email for r in entries if r.email and r.scope is None]
    con = duckdb.connect()
    events = str(settings.dataset("events").path / "*.parquet")
    hits = con.execute(
        f"SELECT count(*) FROM read_parquet('{events}') WHERE lower(trim(\"User\".\"Email\")) IN "
        f"(SELECT unnest($emails))", {"emails": unscoped}).fetchone()[0]
    assert hits == 0

    before = {p.name: p.read_bytes() for p in settings.dataset("events").path.glob("*.parquet")}
    second = json.loads(open(gdpr_sweep(config=str(settings.config_path))).read())
    assert second["totals"]["rows_removed"] == 0
    after = {p.name: p.read_bytes() for p in settings.dataset("events").path.glob("*.parquet")}
    assert before == after
