"""Benchmark: `gdpr-sweep sweep` start to exit on the demo data, with and without a Prefect server (issue 19).

    .venv/bin/python bench/bench_startup.py                 # 3 rounds, the demo's size (50,000 events)
    .venv/bin/python bench/bench_startup.py --rounds 1

Each round sweeps a fresh copy of the same demo lake (`gdpr_sweep.demo.prepare_demo`, seed 7, its sample
blacklist) in a new process per variant, round by round (a slow spell of a shared machine hits every
variant alike); each variant keeps its median. CPU seconds are the process's and its children's.

- `cli_no_server`: `gdpr-sweep sweep` without `PREFECT_API_URL` (the flow's steps, no Prefect API);
- `cli_running_server`: `gdpr-sweep sweep` with `PREFECT_API_URL` of a server already running
  (`prefect server start`, started once before the rounds; its start-up is not counted);
- `flow_temporary_api`: the flow under Prefect's engine without `PREFECT_API_URL`, as `gdpr-sweep sweep`
  ran before decision 0291: Prefect starts its temporary API in the process;
- `in_flow_overhead`: one process, warm, on the running server: the flow run's wall time minus the
  same flow's steps called directly (`gdpr_sweep.fn`) on an identical copy: Prefect's in-flow cost
  (`overhead_cpu_seconds`: the same difference in CPU seconds of the process, its children and the
  server); `in_flow_overhead_temporary_api`: the same on the temporary API the process starts itself.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.prefect_env import child_env, process_defaults  # noqa: E402
from tests.support.procs import COMMAND, free_port  # noqa: E402

PY = sys.executable
TEMPORARY_API = """
import sys
from pipelines.config.settings import load_settings
from gdpr_sweep.cli_common import prepare_prefect
settings = load_settings(sys.argv[1]); prepare_prefect(settings)
from flows.sweep import configured_sweep
configured_sweep(settings)(config=sys.argv[1])
"""
OVERHEAD = """
import json, sys, time
import psutil
from flows.sweep import gdpr_sweep
from prefect import flow
flow(name="bench-warm-up")(lambda: 1)()  # starts the temporary API when no server is configured
watched = [psutil.Process(int(sys.argv[3]))] if sys.argv[3] != "0" else []
def cpu():
    procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
    procs += [q for w in watched for q in (w, *w.children(recursive=True))]
    return sum(sum(q.cpu_times()[:2]) for q in procs)
t, c = time.perf_counter(), cpu(); gdpr_sweep.fn(config=sys.argv[1]); direct, direct_cpu = time.perf_counter() - t, cpu() - c
t, c = time.perf_counter(), cpu(); gdpr_sweep(config=sys.argv[2]); flowed, flow_cpu = time.perf_counter() - t, cpu() - c
print("RESULT " + json.dumps({"steps_seconds": round(direct, 2), "flow_seconds": round(flowed, 2),
                              "seconds": round(flowed - direct, 2), "overhead_cpu_seconds": round(flow_cpu - direct_cpu, 2)}))
"""


def env(api_url: str | None, home: Path) -> dict[str, str]:
    values = {**process_defaults(home), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
              "PREFECT_LOGGING_LEVEL": "WARNING"}
    return child_env(api_url or None, drop=("PREFECT_",), **values)


def template(work: Path) -> Path:
    from gdpr_sweep.demo import prepare_demo
    from pipelines.config.settings import load_settings

    lake = work / "template"
    if not (lake / "gdpr-sweep.toml").exists():
        lake.mkdir(parents=True)
        shutil.copyfile(ROOT / "gdpr-sweep.toml", lake / "gdpr-sweep.toml")
        prepare_demo(load_settings(lake / "gdpr-sweep.toml"), events=50_000, profiles=2000)
    return lake


def fresh(work: Path, name: str) -> Path:
    lake = work / name
    shutil.rmtree(lake, ignore_errors=True)
    shutil.copytree(template(work), lake, symlinks=True)
    return lake / "gdpr-sweep.toml"


def timed(argv: list[str], environ: dict[str, str], cwd: Path) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=environ, cwd=cwd)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    result = {"seconds": round(wall, 2), "cpu_seconds": round(after.ru_utime + after.ru_stime
                                                              - before.ru_utime - before.ru_stime, 2)}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result.update(json.loads(line[7:]))
    return result


def start_server(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    home = work / "server-home"
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([str(Path(PY).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                             str(port)], env=env(None, home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the Prefect server did not answer within 300 s")


def run_round(work: Path, url: str, server_pid: int) -> dict[str, dict[str, Any]]:
    cli = [*COMMAND, "--config"]
    out = {}
    config = fresh(work, "no-server")
    out["cli_no_server"] = timed([*cli, str(config), "sweep"], env(None, work / "home-none"), config.parent)
    config = fresh(work, "server")
    out["cli_running_server"] = timed([*cli, str(config), "sweep"], env(url, work / "home-server"), config.parent)
    config = fresh(work, "temporary")
    out["flow_temporary_api"] = timed([PY, "-c", TEMPORARY_API, str(config)], env(None, work / "home-temp"), ROOT)
    a, b = fresh(work, "overhead-a"), fresh(work, "overhead-b")
    out["in_flow_overhead"] = timed([PY, "-c", OVERHEAD, str(a), str(b), str(server_pid)],
                                    env(url, work / "home-server"), ROOT)
    a, b = fresh(work, "overhead-a"), fresh(work, "overhead-b")
    out["in_flow_overhead_temporary_api"] = timed([PY, "-c", OVERHEAD, str(a), str(b), "0"],
                                                  env(None, work / "home-temp"), ROOT)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gdpr-sweep-bench-startup"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    template(args.work)
    server, url = start_server(args.work)
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for _ in range(args.rounds):
            for name, result in run_round(args.work, url, server.pid).items():
                runs.setdefault(name, []).append(result)
                print(name, result, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
    print("\n| variant (demo data: 50,000 events, 2,000 profiles) | wall s | CPU s |\n| --- | ---: | ---: |")
    for name, results in runs.items():
        med = sorted(results, key=lambda r: r["seconds"])[len(results) // 2]
        cpu = med.get("overhead_cpu_seconds", med["cpu_seconds"])  # the overhead rows: flow minus steps
        print(f"| {name} | {med['seconds']:.2f} | {cpu:.2f} |")
    (args.work / "results.json").write_text(json.dumps(runs, indent=1))
    print(f"\nmedian of {args.rounds}; spread of wall s: "
          + ", ".join(f"{n} {statistics.pstdev(r['seconds'] for r in rs):.2f}" for n, rs in runs.items()))


if __name__ == "__main__":
    main()
