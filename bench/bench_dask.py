"""Benchmark: the full sweep flow on the thread runner vs a Dask local cluster of 1 and 2 workers.

    .venv/bin/python bench/bench_dask.py                          # 20M events (generated if missing)
    .venv/bin/python bench/bench_dask.py --data /tmp/gdpr-sweep-bench/data-20m --events 20

The data is `bench/bench_sweep.py`'s (`pipelines.sample.generate`, seed 7, 365 daily files, profiles = events
/ 20, 10,010 blacklist entries of which the first 10,000 are applied); pass `--data` to reuse a folder
that script generated. Each variant runs in its own process on a fresh cleaned lake (raw snapshots
hard-linked in, so nothing is copied): the same `gdpr_sweep` flow with `task_runner` `local`, `dask`
with `dask_workers = 1` and `dask_workers = 2`. Prefect's own start-up (import, temporary API) is
timed apart; the Dask cluster's start-up is part of the flow time (it is what a run pays) and is also
timed alone. Every variant's output files must be byte-identical. Results go to `<work>/dask.json`
and a Markdown section is printed (pasted into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import prefect_env  # noqa: E402

VARIANTS = {"local": ("local", 1), "dask-1": ("dask", 1), "dask-2": ("dask", 2)}
def ensure_data(data: Path, millions: int) -> None:
    if (data / "blacklist.json").exists():
        return
    from pipelines.sample.generate import generate

    events = millions * 1_000_000
    generate(data, profiles=events // 20, events=events, days=365, seed=7, blacklist=10_010)


def prepare(root: Path, data: Path, runner: str, workers: int) -> Path:
    from pipelines.registry.registry import Registry

    shutil.rmtree(root, ignore_errors=True)
    for kind in ("profiles", "events"):
        (root / "raw" / kind).mkdir(parents=True)
        for f in (data / kind).glob("*.parquet"):
            os.link(f, root / "raw" / kind / f.name)
    items = json.loads((data / "blacklist.json").read_text())["items"][:10_000]
    Registry(root / "blacklist.db").import_optimizely({"items": items})
    from tests.support.lake import two_datasets, write_lake_config

    sweep = {"work_dir": root / "work", "report_dir": root / "reports", "blacklist_db": root / "blacklist.db",
             "allow_paths_outside_base": True, "task_runner": runner, "dask_workers": workers}
    return write_lake_config(root, *two_datasets(root / "raw", root / "clean"), sweep=sweep)


def run_variant(root: Path, config: Path) -> dict[str, Any]:
    prefect_env.configure_process(root / "prefect-home", override=True, PREFECT_LOGGING_LEVEL="WARNING",
                                  PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
    t0 = time.perf_counter()
    from prefect import flow

    @flow(name="bench-warm-up")
    def warm_up() -> int:
        return 1

    warm_up()
    from flows.runners import task_runner_for
    from flows.sweep import gdpr_sweep
    from pipelines.config.settings import load_settings

    settings = load_settings(config)
    t1 = time.perf_counter()
    report_path = gdpr_sweep.with_options(task_runner=task_runner_for(settings))(config=str(config))
    t2 = time.perf_counter()
    report = json.loads(Path(report_path).read_text())
    digest = hashlib.sha256()
    for ds in ("profiles", "events"):
        for f in sorted((root / "clean" / ds).glob("*.parquet")):
            digest.update(f.name.encode())
            digest.update(hashlib.sha256(f.read_bytes()).digest())
    return {"seconds": round(t2 - t1, 1), "prefect_startup_seconds": round(t1 - t0, 1),
            "rows_removed": report["totals"]["rows_removed"], "verification_ok": report["verification"]["ok"],
            "outputs_sha256": digest.hexdigest()}


def cluster_startup(workers: int) -> float:
    from distributed import Client, LocalCluster

    t = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            Client(c) as client:
        client.wait_for_workers(workers)
        return round(time.perf_counter() - t, 1)


def load_average() -> float:
    return round(os.getloadavg()[0], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gdpr-sweep-bench-dask"))
    parser.add_argument("--data", type=Path, help="a data folder from bench/bench_sweep.py (default: <work>/data)")
    parser.add_argument("--events", type=int, default=20, help="millions of events when generating")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="which runs, e.g. dask-1,dask-2")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.data or args.work / "data"
    if args.variant:  # child process: one variant
        runner, workers = VARIANTS[args.variant]
        root = args.work / args.variant
        config = prepare(root, data, runner, workers)
        result = run_variant(root, config)
        (root / "result.json").write_text(json.dumps(result))
        print(args.variant, result, flush=True)
        shutil.rmtree(root / "clean", ignore_errors=True)
        shutil.rmtree(root / "raw", ignore_errors=True)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    ensure_data(data, args.events)
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} cores, {platform.python_version()}",
                               "events_millions": args.events, "cluster_startup_seconds": {}}
    for workers in (1, 2):
        results["cluster_startup_seconds"][workers] = cluster_startup(workers)
    names = [n for n in args.variants.split(",") if n]
    for name in names:
        load = load_average()
        subprocess.run([sys.executable, __file__, "--work", str(args.work), "--data", str(data),
                        "--variant", name], check=True)
        results[name] = json.loads((args.work / name / "result.json").read_text()) | {"load_average": load}
    (args.work / "dask.json").write_text(json.dumps(results, indent=2))
    base = results["dask-1"]["seconds"]
    print("| runner | flow seconds | vs 1 Dask worker | rows removed | outputs identical | load average |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    ref = results[names[0]]["outputs_sha256"]
    for name in names:
        r = results[name]
        print(f"| {name} | {r['seconds']} | {r['seconds'] / base:.2f} | {r['rows_removed']} | "
              f"{'yes' if r['outputs_sha256'] == ref else 'NO'} | {r['load_average']} |")
    print(f"\nDask LocalCluster start-up alone: {results['cluster_startup_seconds']}")


if __name__ == "__main__":
    main()
