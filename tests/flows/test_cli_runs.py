"""`gdpr-sweep sweep` with and without a Prefect server (docs/decisions/0291-cli-runs-without-a-server.md):
without one it runs the flow's steps in its own process and contacts no Prefect API at all (Prefect may
not start a temporary server here: any attempt fails the run); with one the run is recorded on the
server, named `gdpr_sweep-<run_id>`. Both give the same cleaned data and the same report counts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq

from gdpr_sweep.demo import prepare_demo
from pipelines.config.settings import load_settings
from pipelines.datasets import storage
from tests.helpers import lake_config
from tests.support.prefect_env import child_env
from tests.support.procs import run_cli


def _lake(root: Path):
    root.mkdir()
    (root / "gdpr-sweep.toml").write_text(lake_config("data/sample"))
    settings = load_settings(root / "gdpr-sweep.toml")
    prepare_demo(settings, events=3000, profiles=200)
    return settings


def _sweep(settings, **env: str) -> tuple[subprocess.CompletedProcess, dict]:
    base = child_env(None, drop=("PREFECT_",), **env)
    proc = run_cli(settings.config_path, "sweep", env=base)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = sorted(settings.report_dir.glob("*/report.json"))
    return proc, json.loads(path.read_text())


def _clean(settings) -> dict[str, list]:
    out = {}
    for ds in settings.datasets:
        folder = storage.current_version(ds.path)
        rows = [r for f in storage.list_parquet(folder) for r in pq.read_table(folder / f).to_pylist()]
        out[ds.name] = sorted(map(repr, rows))
    return out


def _counts(report: dict) -> list[tuple]:
    return [(d["name"], d["rows_in"], d["rows_out"], d["rows_removed"]) for d in report["datasets"]]


def _flow_runs_named(name: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))


def test_cli_sweep_without_a_server_matches_the_run_recorded_on_a_server(prefect_harness, tmp_path):
    from prefect.settings import get_current_settings

    alone, served = _lake(tmp_path / "alone"), _lake(tmp_path / "served")
    _, report_alone = _sweep(alone, PREFECT_HOME=str(tmp_path / "home"), PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false")
    _, report_served = _sweep(served, PREFECT_API_URL=str(get_current_settings().api.url))

    assert _counts(report_alone) == _counts(report_served)
    assert sum(d["rows_removed"] for d in report_alone["datasets"]) > 0
    assert _clean(alone) == _clean(served)
    assert report_alone["verification"] == report_served["verification"]

    served_id, alone_id = report_served["run"]["run_id"], report_alone["run"]["run_id"]
    (run,) = _flow_runs_named(f"gdpr_sweep-{served_id}")
    assert run.state is not None and run.state.is_completed()
    assert _flow_runs_named(f"gdpr_sweep-{alone_id}") == []  # nothing was sent to any API
