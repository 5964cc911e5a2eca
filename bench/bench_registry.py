"""Registry at scale: bulk import of an Optimizely list and the snapshot a sweep loads.

    .venv/bin/python bench/bench_registry.py --entries 10000000 [--dir /tmp/x] [--keep]

Writes a synthetic Optimizely list (emails `user<i>@example.com`, every third with a scope, every
fifth with a user id) to a temporary folder, then times, in this process:
  parse    json.load of the file
  import   Registry.import_optimizely (validation, keyed hashes, one history row per entry, one
           durable commit)
  close    closing the importing connection: SQLite folds the WAL into the database file (what a
           `gdpr-sweep blacklist import` process pays on exit)
  snapshot Registry.snapshot() (one read transaction -> Arrow)
  table    Snapshot.entries_table() (what the sweep's match step joins against)
  add      one Registry.add on the full registry, status one look-up
  next     the snapshot again after 1,000 more entries (brought up to date from the kept one)
With --fill the entries are written straight into the tables instead (to time the load alone).
and prints a Markdown table row for docs/benchmarks.md: wall seconds, with CPU seconds of this
process in brackets (on a busy machine the CPU time is close to what an idle one takes). Nothing is
written into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.registry.registry import Registry  # noqa: E402


def write_list(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f'{{"total": {n}, "count": {n}, "items": [\n')
        for i in range(n):
            item = {"Email": f"user{i}@example.com"}
            if i % 3 == 0:
                item["Scope"] = f"site_{i % 7}"
            if i % 5 == 0:
                item["UserId"] = f"u{i:09d}"
            fh.write(("," if i else "") + json.dumps(item) + "\n")
        fh.write("]}\n")


def fill(registry: Registry, n: int) -> None:
    """Entries and one history row each, written straight into the tables (no validation, no hashes)."""
    import sqlite3

    registry.list()  # creates the schema
    con = sqlite3.connect(registry.path, isolation_level=None)
    con.execute("PRAGMA cache_size = -262144")
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO meta (key, value) VALUES ('hmac_key', ?)", [os.urandom(32).hex()])  # as a write makes
    con.executemany("INSERT INTO history (seq, at, action, blacklist_id, email_hash, channel, outcome, recorded_at) "
                    "VALUES (?, '2026-11-01T00:00:00.000000Z', 'add', ?, 'h', 'import', 'applied', "
                    "'2026-11-01T00:00:00.000000Z')", ((i + 1, f"{i:08x}-0000-4000-8000-{i:012x}") for i in range(n)))
    con.executemany(
        "INSERT INTO entries (blacklist_id, email, user_id, scope, created_at, source, added_seq) "
        "VALUES (?, ?, ?, ?, '2026-11-01T00:00:00.000000Z', 'import', ?)",
        ((f"{i:08x}-0000-4000-8000-{i:012x}", f"user{i}@example.com", f"u{i:09d}" if i % 5 == 0 else None,
          f"site_{i % 7}" if i % 3 == 0 else None, i + 1) for i in range(n)))
    con.execute("COMMIT")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument("--fill", action="store_true",
                        help="skip the import: fill the entries table directly (SQL), to time only the sweep's load")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-registry-"))
    work.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    rss_before_import = rss_import = float("nan")
    cpu: dict[str, float] = {}

    def timed(name: str, fn):  # wall and CPU seconds: on a busy machine CPU time is what an idle one would take
        wall, proc = time.perf_counter(), time.process_time()
        result = fn()
        times[name], cpu[name] = time.perf_counter() - wall, time.process_time() - proc
        return result
    try:
        registry = Registry(work / "blacklist.db")
        if args.fill:
            timed("fill", lambda: fill(registry, args.entries))
        else:
            src = work / "list.json"
            timed("generate", lambda: write_list(src, args.entries))
            doc = timed("parse", lambda: json.loads(src.read_text(encoding="utf-8")))
            rss_before_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the parsed list's share
            counts = timed("import", lambda: registry.import_optimizely(doc))
            rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            doc = None  # free it before the snapshot
            assert counts["added"] == args.entries, counts
        timed("close", registry.close)  # a sweep runs in another process: start from a cold connection

        snapshot = timed("snapshot", lambda: Registry(work / "blacklist.db").snapshot())
        table = timed("table", snapshot.entries_table)
        assert table.num_rows == args.entries and snapshot.version == args.entries
        del snapshot, table

        timed("add", lambda: registry.add(email="one.more@example.com"))
        timed("status", lambda: registry.status(email=f"user{args.entries - 1}@example.com"))
        # The next night: a thousand more entries since the kept snapshot, then the sweep's load again.
        registry.import_optimizely({"items": [{"Email": f"night{i}@example.com"} for i in range(1000)]})
        again = timed("snapshot_next", lambda: Registry(work / "blacklist.db").snapshot())
        assert again.count == args.entries + 1001
        db_mb = sum(f.stat().st_size for f in work.glob("blacklist.db*")) / 2**20
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()[0]
    print(json.dumps({"wall": {k: round(v, 3) for k, v in times.items()},
                      "cpu": {k: round(v, 3) for k, v in cpu.items()},
                      "peak_rss_mb": {"before_import": round(rss_before_import), "after_import": round(rss_import)}}))
    if args.fill:
        times["parse"] = cpu["parse"] = times["import"] = cpu["import"] = float("nan")
    print("| entries | parse s | import s | close s | snapshot s | entries_table s | next s | add | status | DB size "
          "| peak RSS | load |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {args.entries:,} | {times['parse']:.1f} ({cpu['parse']:.1f}) | {times['import']:.1f} "
          f"({cpu['import']:.1f}) | {times['close']:.1f} | {times['snapshot']:.1f} ({cpu['snapshot']:.1f}) | {times['table']:.2f} | "
          f"{times['snapshot_next']:.1f} ({cpu['snapshot_next']:.1f}) | "
          f"{times['add'] * 1000:.0f} ms | {times['status'] * 1000:.0f} ms | {db_mb:,.0f} MB | {rss_mb:,.0f} MB | "
          f"{load:.1f} |")


if __name__ == "__main__":
    main()
