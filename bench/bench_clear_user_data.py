"""ClearUserData against a full sweep on a generated lake (default 20M events in 16 daily files).

    .venv/bin/python bench/bench_clear_user_data.py [--dir /tmp/gdpr-bench-clear] [--events 20000000]

Steps, each timed (wall clock, warm page cache after the first read):
1. generate the sample lake once (kept in --dir and reused by later runs);
2. full sweep: every raw file taken in, matched against the sample blacklist, rewritten where it
   holds matches, verified, published (the pipeline steps the flow wires, without Prefect);
3. ClearUserData for --repeat people who were not blacklisted (each has a profile and events):
   the time, the files rewritten out of all files, and a check that every other file kept its inode;
4. the next nightly sweep after one more entry, for comparison.

Prints a Markdown table for docs/benchmarks.md. Results go there by hand, with the machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.config.settings import Settings  # noqa: E402
from pipelines.core.match import connect, find_matches  # noqa: E402
from pipelines.datasets import storage  # noqa: E402
from pipelines.datasets.sweep import plan_dataset, publish_version, verify_versions, write_version  # noqa: E402
from pipelines.operations.targeted import clear_user_data  # noqa: E402
from pipelines.registry.registry import Registry  # noqa: E402
from tests.support.lake import sample_lake  # noqa: E402


def full_sweep(settings: Settings, run_id: str) -> tuple[float, int, int]:
    """The sweep's steps as the flow wires them; return (seconds, files rewritten, rows removed)."""
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
    seconds = time.perf_counter() - t0
    return seconds, sum(f.rewritten for o in outcomes for f in o.files), sum(o.rows_removed for o in outcomes)


def pick_people(settings: Settings, n: int) -> list[str]:
    """Emails of people with a profile and events, not blacklisted yet, in a fixed pseudo-random order
    (typical people, not only the most active)."""
    blacklisted = {r.email for r in Registry(settings.blacklist_db).snapshot().records if r.email}
    profiles = storage.current_version(settings.dataset("profiles").path)
    events = storage.current_version(settings.dataset("events").path)
    con = duckdb.connect()
    rows = con.execute(f"""
        SELECT e.email, count(*) AS n FROM (
            SELECT lower(trim("User"."Email")) AS email FROM read_parquet('{events}/*.parquet')) AS e
        SEMI JOIN (SELECT lower(trim("Info"."Email")) AS email FROM read_parquet('{profiles}/*.parquet')) AS p
        ON e.email = p.email
        GROUP BY e.email ORDER BY hash(e.email), e.email LIMIT ?""", [n + len(blacklisted)]).fetchall()
    return [email for email, _ in rows if email not in blacklisted][:n]


def inodes(settings: Settings) -> dict[str, int]:
    found = {}
    for ds in settings.datasets:
        folder = storage.current_version(ds.path)
        for rel in storage.list_parquet(folder):
            found[f"{ds.name}/{rel}"] = os.stat(folder / rel).st_ino
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/gdpr-bench-clear"))
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=16)
    parser.add_argument("--blacklist", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = args.dir
    settings = sample_lake(root, args.events, args.profiles, args.days, args.blacklist, duckdb_memory_limit="4GB")
    registry = Registry(settings.blacklist_db)
    files = sum(len(storage.list_parquet(ds.source)) for ds in settings.datasets)
    size = sum((ds.source / rel).stat().st_size for ds in settings.datasets for rel in storage.list_parquet(ds.source))
    print(f"lake: {files} files, {size / 1e6:.0f} MB, {registry.snapshot().count} entries", flush=True)

    sweep_s, sweep_files, sweep_rows = full_sweep(settings, "bench-full")
    print(f"full sweep: {sweep_s:.1f} s, {sweep_files}/{files} files rewritten, {sweep_rows} rows removed", flush=True)

    clears = []
    for i, email in enumerate(pick_people(settings, args.repeat)):
        bid = registry.add(email=email, source="cli")[0].blacklist_id
        before = inodes(settings)
        t0 = time.perf_counter()
        summary = clear_user_data(settings, bid)
        seconds = time.perf_counter() - t0
        after = inodes(settings)
        changed = {k for k in before if after.get(k) != before[k]}
        assert len(changed) == summary["files_rewritten"], (changed, summary)
        clears.append((seconds, summary["files_rewritten"], summary["rows_removed"]))
        print(f"clear-user-data #{i + 1}: {seconds:.2f} s, {summary['files_rewritten']}/{files} files rewritten "
              f"(all others kept their inode), {summary['rows_removed']} rows removed", flush=True)

    extra = pick_people(settings, 1)[0]
    registry.add(email=extra, source="cli")
    nightly_s, nightly_files, nightly_rows = full_sweep(settings, "bench-nightly")
    print(f"next sweep with one new entry: {nightly_s:.1f} s, {nightly_files}/{files} files rewritten, "
          f"{nightly_rows} rows removed", flush=True)

    median = statistics.median(s for s, _, _ in clears)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print("| what | seconds | files rewritten | rows removed | vs full sweep |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| full sweep (raw -> clean, {registry.snapshot().count - len(clears) - 1} entries) | {sweep_s:.1f} | "
          f"{sweep_files}/{files} | {sweep_rows} | 1.00 |")
    for n, (s, f, r) in enumerate(clears, start=1):
        print(f"| ClearUserData, person {n} | {s:.2f} | {f}/{files} | {r} | {s / sweep_s:.2f} |")
    print(f"| ClearUserData, median of {len(clears)} | {median:.2f} | | | {median / sweep_s:.2f} |")
    print(f"| next nightly sweep, one new entry | {nightly_s:.1f} | {nightly_files}/{files} | {nightly_rows} | "
          f"{nightly_s / sweep_s:.2f} |")
    print(f"\npeak RSS of the whole run: {rss:.0f} MB")


if __name__ == "__main__":
    main()
