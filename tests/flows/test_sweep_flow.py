"""The sweep flow end to end under the Prefect harness, on a small generated dataset."""

from __future__ import annotations

import json

import duckdb
import pytest

from gdpr_sweep.demo import prepare_demo
from pipelines.config.settings import load_settings
from pipelines.registry.registry import Registry
from tests.helpers import lake_config  # noqa: E402
from tests.support.lake import two_datasets, write_lake_config

CONFIG = lake_config("data/sample")
# The sweep on Prefect's thread pool: one task run per stage, whatever the number of datasets and files
# (docs/decisions/0321-one-task-per-stage.md); a Dask runner maps per partition (tests/scaleout/test_dask.py).
STAGES = ["extract", "load_blacklist", "load_holds", "match", "publish", "purge", "residual_scan", "verify",
          "write_report"]


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


def test_nightly_deployment_flow_runs_the_sweep_as_a_subflow(prefect_harness, demo_settings):
    """prefect.yaml's nightly entry point: the sweep runs as its subflow and the report is the sweep's."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    from flows.sweep import nightly_sweep

    state = nightly_sweep(config=str(demo_settings.config_path), return_state=True)
    assert state.is_completed()
    report = json.loads(open(state.result()).read())
    assert report["verification"]["ok"] and report["totals"]["rows_removed"] > 0

    async def child_flow_names():
        parent = FlowRunFilterParentFlowRunId(any_=[state.state_details.flow_run_id])
        async with get_client() as client:
            children = await client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=parent))
            return [(await client.read_flow(r.flow_id)).name for r in children]

    assert asyncio.run(child_flow_names()) == ["gdpr_sweep"]


@pytest.mark.parametrize(("runner", "expected"), [("local", "ThreadPoolTaskRunner"), ("dask", "ReportingDaskTaskRunner")])
def test_configured_sweep_uses_the_configured_task_runner(tmp_path, runner, expected):
    """The runner `nightly_sweep` and `gdpr-sweep sweep` give the sweep comes from `[sweep] task_runner`
    (tests/scaleout/test_dask.py runs a sweep on a real Dask cluster through the same call)."""
    from flows.sweep import configured_sweep

    write_lake_config(tmp_path, *two_datasets("data/sample"), sweep={"task_runner": runner})
    flow = configured_sweep(load_settings(tmp_path / "gdpr-sweep.toml"))
    assert type(flow.task_runner).__name__ == expected and flow.name == "gdpr_sweep"


def _task_runs(state) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
            any_=[state.state_details.flow_run_id])))


def test_sweep_flow_shows_one_task_per_stage_and_which_one_failed(prefect_harness, demo_settings):
    """Operators see Extract, Match, Purge, Verify, Publish, Report as one task each; a file that is not
    Parquet fails the stage that read it, once (bad input is not retried), and nothing after it runs."""
    from flows.sweep import gdpr_sweep

    state = gdpr_sweep(config=str(demo_settings.config_path), return_state=True)
    assert state.is_completed()
    runs = _task_runs(state)
    assert sorted(r.name.rsplit("-", 1)[0] for r in runs) == STAGES
    assert all(r.state is not None and r.state.is_completed() and r.run_count == 1 for r in runs)

    source = demo_settings.dataset("events").source
    assert source is not None
    (source / "zz-not-parquet.parquet").write_bytes(b"PAR1" + bytes(200) + b"\x10\x00\x00\x00PAR1")
    failed = gdpr_sweep(config=str(demo_settings.config_path), return_state=True)
    assert failed.is_failed() and "zz-not-parquet.parquet" in (failed.message or "")
    by_name = {r.name.rsplit("-", 1)[0]: r for r in _task_runs(failed)}
    bad = [name for name, r in by_name.items() if r.state is not None and r.state.is_failed()]
    assert bad == ["extract"] and by_name["extract"].run_count == 1
    assert set(by_name) == {"load_blacklist", "load_holds", "extract"}
