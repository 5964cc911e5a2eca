"""The residual scan's cost beside the full sweep, on a generated lake (default 20M events, 10,000 entries).

    .venv/bin/python bench/bench_residual_scan.py [--dir /tmp/gdpr-bench-scan] [--events 20000000]

Steps, each timed (wall clock; the lake is generated once and kept in --dir):
1. generate the sample lake (`pipelines.sample.generate`, --blacklist entries) and load the blacklist;
2. full sweep: every raw file taken in, matched, rewritten where it holds matches, verified, published
   (the pipeline steps the flow wires, without Prefect's start-up);
3. the residual scan of the cleaned datasets with every entry and the devices the sweep linked
   (`pipelines.assurance.residual_scan.run_scan`: every string value of every file, one read per file);
4. the same scan with 10 entries, to show its cost does not depend on the number of entries.

Prints a Markdown table for docs/benchmarks.md. Results go there by hand, with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.assurance.residual_scan import linked_pairs, run_scan  # noqa: E402
from pipelines.config.settings import Settings  # noqa: E402
from pipelines.core.match import connect, find_matches  # noqa: E402
from pipelines.datasets import storage  # noqa: E402
from pipelines.datasets.sweep import plan_dataset, publish_version, verify_versions, write_version  # noqa: E402
from pipelines.registry.registry import Registry  # noqa: E402
from tests.support.lake import sample_lake  # noqa: E402


def full_sweep(settings: Settings, run_id: str) -> tuple[float, int, list[tuple[str, str]]]:
    """The sweep's steps as the flow wires them; return (seconds, rows removed, linked devices)."""
    t0 = time.perf_counter()
    snapshot = Registry(settings.blacklist_db).snapshot()
    entries = snapshot.entries_table()
    plans = [plan_dataset(c) for c in settings.datasets]
    with connect(settings.duckdb_memory_limit) as con:
        match = find_matches(con, entries, [p.as_input() for p in plans], settings.link_devices_through_events)
        outcomes = [write_version(p, match.datasets[p.config.name], run_id, snapshot.version) for p in plans]
        verification = verify_versions(con, entries, outcomes, settings.datasets, match,
                                       settings.link_devices_through_events)
    assert verification.ok, verification
    for p, o in zip(plans, outcomes, strict=True):
        publish_version(p.config, o)
    return time.perf_counter() - t0, sum(o.rows_removed for o in outcomes), linked_pairs(match.linked_devices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/gdpr-bench-scan"))
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=16)
    parser.add_argument("--blacklist", type=int, default=10_000)
    args = parser.parse_args()
    root = args.dir
    settings = sample_lake(root, args.events, args.profiles, args.days, args.blacklist, duckdb_memory_limit="4GB")
    registry = Registry(settings.blacklist_db)
    entries = registry.snapshot().entries
    files = sum(len(storage.list_parquet(ds.source)) for ds in settings.datasets)
    size = sum((ds.source / rel).stat().st_size for ds in settings.datasets for rel in storage.list_parquet(ds.source))
    print(f"lake: {files} files, {size / 1e6:.0f} MB, {len(entries)} entries, load {os.getloadavg()[0]:.1f}",
          flush=True)

    sweep_s, removed, devices = full_sweep(settings, "bench-full")
    print(f"full sweep: {sweep_s:.1f} s, {removed} rows removed, {len(devices)} linked devices", flush=True)

    t0 = time.perf_counter()
    result = run_scan(settings, entries, devices)
    scan_s = time.perf_counter() - t0
    rows = sum(t["rows"] for t in result.targets)
    values = sum(t["values"] for t in result.targets)
    print(f"residual scan, {len(entries)} entries + {result.devices} devices: {scan_s:.1f} s, {rows} rows, "
          f"{values} string values, {len(result.findings)} findings", flush=True)

    t0 = time.perf_counter()
    few = run_scan(settings, entries[:10], [d for d in devices if d[0] in {e.blacklist_id for e in entries[:10]}])
    few_s = time.perf_counter() - t0
    print(f"residual scan, 10 entries: {few_s:.1f} s, {len(few.findings)} findings", flush=True)

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print("| what | seconds | vs full sweep |")
    print("| --- | ---: | ---: |")
    print(f"| full sweep (raw -> clean, {len(entries)} entries) | {sweep_s:.1f} | 1.00 |")
    print(f"| residual scan, {len(entries)} entries + {result.devices} linked devices | {scan_s:.1f} | "
          f"{scan_s / sweep_s:.2f} |")
    print(f"| residual scan, 10 entries | {few_s:.1f} | {few_s / sweep_s:.2f} |")
    print(f"\n{rows} rows, {values} string values searched; peak RSS of the whole run: {rss:.0f} MB; "
          f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
