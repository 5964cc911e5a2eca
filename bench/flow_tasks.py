"""Where a sweep's time goes: the real flow's task runs, from Prefect's own run records.

    .venv/bin/python bench/flow_tasks.py --work /tmp/gdpr-sweep-bench --scale 20

Uses the data and configuration `bench/bench_sweep.py` prepared under `--work` for that scale (run it
first). Resets the scale's lake to raw snapshots, runs a full sweep, adds the 10 "new" entries, runs
the nightly incremental sweep, and prints for each run every task's start (seconds after the flow run
started) and duration, as a Markdown table. Prefect's start-up is paid once, before both runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_sweep as bench  # noqa: E402


async def _task_runs(flow_run_id: Any) -> list[tuple[float, float, str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        flow_run = await client.read_flow_run(flow_run_id)
    rows = [((r.start_time - flow_run.start_time).total_seconds(), (r.end_time - r.start_time).total_seconds(),
             r.name.rsplit("-", 1)[0]) for r in runs if r.start_time and r.end_time]
    rows.append((0.0, (flow_run.end_time - flow_run.start_time).total_seconds(), "flow run, total"))
    return sorted(rows)


def run_flow(config: Path) -> tuple[float, list[tuple[float, float, str]]]:
    from flows.sweep import gdpr_sweep

    t = time.perf_counter()
    state = gdpr_sweep(str(config), return_state=True)
    seconds = time.perf_counter() - t
    if not state.is_completed():
        raise SystemExit(f"the sweep did not complete: {state.message}")
    return seconds, asyncio.run(_task_runs(state.state_details.flow_run_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gdpr-sweep-bench"))
    parser.add_argument("--scale", type=int, default=20, help="millions of events (a scale bench_sweep.py prepared)")
    args = parser.parse_args()
    scale = bench.Scale(args.work, args.scale)
    base, new = bench.split_blacklist(scale)
    bench.reset_sweep_state(scale, base)
    bench._prefect_env(scale)
    from prefect import flow

    @flow(name="bench-warm-up")
    def warm_up() -> int:
        return 1

    warm_up()
    full = run_flow(scale.root / "gdpr-sweep.toml")
    from pipelines.registry.registry import Registry

    Registry(scale.root / "blacklist.db").import_optimizely({"items": new})
    nightly = run_flow(scale.root / "gdpr-sweep.toml")
    for title, (seconds, rows) in (("full sweep", full), (f"incremental sweep, {len(new)} new entries", nightly)):
        print(f"\n{title} ({args.scale}M events): {seconds:.1f} s around the flow call\n")
        print("| task | starts at s | seconds |\n| --- | ---: | ---: |")
        for start, duration, name in rows:
            print(f"| {name} | {start:.2f} | {duration:.2f} |")


if __name__ == "__main__":
    main()
