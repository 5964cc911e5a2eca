"""`gdpr-sweep sweep` on a local Dask cluster, on Prefect's temporary API: the workers report to the
flow's API instead of each starting a temporary API of its own (flows/dask_runner.py, issue 17)."""

from __future__ import annotations

import json

from tests.report_support import write_config, write_raw
from tests.support.prefect_env import child_env, process_defaults
from tests.support.procs import run_cli


def test_dask_workers_report_to_the_flows_temporary_api(tmp_path):
    config = write_config(tmp_path, True, task_runner="dask", dask_workers=1)
    write_raw(tmp_path)
    env = child_env(None, drop=("PREFECT_API",), **process_defaults(tmp_path / "prefect-home"),
                    PREFECT_LOGGING_LEVEL="INFO")  # no API: the flow starts its own temporary one
    proc = run_cli(config, "sweep", env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(open(proc.stdout.splitlines()[0].removeprefix("report: ")).read())
    assert report["verification"]["ok"] and report["totals"]["rows_in"] > 0
    started = [line for line in proc.stderr.splitlines() if "Starting temporary server" in line]
    assert len(started) == 1, started  # the flow's own; none per Dask worker
