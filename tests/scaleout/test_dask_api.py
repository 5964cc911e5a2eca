"""`gdpr-sweep sweep` on a local Dask cluster, on Prefect's temporary API: the workers report to the
flow's API instead of each starting a temporary API of its own (flows/dask_runner.py, issue 17)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.report_support import write_config, write_raw


def test_dask_workers_report_to_the_flows_temporary_api(tmp_path):
    config = write_config(tmp_path, delete_raw=True)
    config.write_text(config.read_text().replace("[sweep]\n", '[sweep]\ntask_runner = "dask"\ndask_workers = 1\n'))
    write_raw(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env["PREFECT_LOGGING_LEVEL"] = "INFO"
    proc = subprocess.run([sys.executable, "-m", "gdpr_sweep", "--config", str(config), "sweep"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(open(proc.stdout.splitlines()[0].removeprefix("report: ")).read())
    assert report["verification"]["ok"] and report["totals"]["rows_in"] > 0
    started = [line for line in proc.stderr.splitlines() if "Starting temporary server" in line]
    assert len(started) == 1, started  # the flow's own; none per Dask worker
