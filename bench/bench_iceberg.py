"""Benchmark: full, nightly and quiet sweeps of Iceberg tables, local and on S3 (moto's server).

    .venv/bin/python bench/bench_iceberg.py                        # 2M events, 100k profiles, 365 days
    .venv/bin/python bench/bench_iceberg.py --events 0.02 --days 7 --entries 50 --no-s3   # smoke run

The data is `pipelines.generate`'s (seed 7; profiles = events / 20), the same as bench/bench_s3.py.
Each table is written by pyiceberg through its SQL catalog (SQLite): the events with one append per
day (one data file each, like a daily delivery), the profiles with one append per generated file.
Each storage is swept three times through pipelines/datasets/iceberg.py's steps, without Prefect:

- `full`    every entry but 10, on tables never swept;
- `nightly` the next night, 10 more entries;
- `quiet`   the night after, no new entry: nothing to remove, nothing committed.

Steps: plan (the current snapshot's data files), match (§3, DuckDB over the data files), purge (the
copy-on-write commit), verify (re-read the rewritten files), finish (expire, delete unreferenced
files, the decoding search of the table location). Results go to `<work>/iceberg.json` and a Markdown
table printed at the end (pasted into docs/benchmarks.md). moto's server runs in this process (as in
tests/scaleout/conftest.py; pyarrow's multipart uploads of pyiceberg's metadata failed against a
separate `moto_server` process here). moto is no S3: see bench/bench_s3.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.procs import free_port  # noqa: E402

NEW_ENTRIES = 10
SEED = 7


def generate(data: Path, events: int, entries: int, days: int) -> None:
    from pipelines.sample.generate import generate as gen

    done = data / "_bench_generated.json"
    want = {"events": events, "entries": entries, "days": days}
    if done.exists() and json.loads(done.read_text()) == want:
        return
    gen(data, profiles=max(events // 20, entries + NEW_ENTRIES + 10), events=events, days=days, seed=SEED,
        blacklist=entries + NEW_ENTRIES)
    done.write_text(json.dumps(want))


def configs(root: Path, url: str | None):  # type: ignore[no-untyped-def]
    from pipelines.config.iceberg import IcebergSettings
    from pipelines.config.settings import DatasetConfig

    def one(name: str, kind: str, **columns: str) -> DatasetConfig:
        location = f"{url}/lake/{name}" if url else str(root / "warehouse" / "lake" / name)
        return DatasetConfig(name=name, kind=kind, path=Path(location), url=location if url else None,
                             format="iceberg", iceberg=IcebergSettings(table=f"lake.{name}",
                                                                       catalog_db=root / "catalog.db"), **columns)

    return (one("profiles", "profiles", email="Info.Email", user_id="UserId", device_ids="DeviceIds", scope="Scope"),
            one("events", "events", email="User.Email", user_id="User.UserId", device_id="DeviceId", scope="Scope"))


def write_tables(data: Path, root: Path, url: str | None, s3) -> float:  # type: ignore[no-untyped-def]
    import pyarrow.parquet as pq
    from pyiceberg.catalog import load_catalog

    from pipelines.config.iceberg import catalog_properties

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    profiles, events = configs(root, url)
    warehouse = f"{url}" if url else (root / "warehouse").as_uri()
    catalog = load_catalog("default", **catalog_properties(events.iceberg, s3), warehouse=warehouse)
    catalog.create_namespace("lake")
    start = time.perf_counter()
    for config, folder in ((profiles, "profiles"), (events, "events")):
        files = sorted((data / folder).glob("*.parquet"))
        table = catalog.create_table(config.iceberg.table, schema=pq.read_schema(files[0]))
        for f in files:
            table.append(pq.read_table(f))
    return round(time.perf_counter() - start, 2)


def sweep(configs_, entries, s3, fs, run_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from pipelines.core.match import connect, entries_table, find_matches
    from pipelines.datasets import iceberg, objectstore
    from pipelines.datasets.sweep import verify_versions

    steps: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        steps[name] = round(now - t, 2)
        t = now

    plans = [iceberg.plan_table(c, s3) for c in configs_]
    lap("plan")
    table = entries_table(entries)
    with connect() as con:
        if s3 is not None:
            objectstore.register(con, s3)
        matches = find_matches(con, table, [p.as_input() for p in plans])
        lap("match")
        outcomes = [iceberg.purge_table(p, matches.datasets[p.config.name], run_id, s3, fs) for p in plans]
        lap("purge")
        verification = verify_versions(con, table, [iceberg.verifiable(o) for o in outcomes], list(configs_),
                                       matches, True)
        assert verification.ok, verification
        lap("verify")
    unscoped = [e.email for e in entries if e.email and e.scope is None]
    cleanups = [iceberg.finish_purge(c, o, unscoped, s3, fs) for c, o in zip(configs_, outcomes, strict=True)]
    lap("finish")
    return {"seconds": round(sum(steps.values()), 2), "steps": steps,
            "files": sum(len(o.files) for o in outcomes),
            "files_rewritten": sum(f.rewritten for o in outcomes for f in o.files),
            "rows_removed": sum(o.rows_removed for o in outcomes),
            "files_deleted": sum(c.files_deleted for c in cleanups),
            "snapshots_expired": sum(c.snapshots_expired for c in cleanups)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gdpr-sweep-bench-iceberg"))
    parser.add_argument("--events", type=float, default=2, help="millions of events")
    parser.add_argument("--days", type=int, default=365, help="daily event files (one append each)")
    parser.add_argument("--entries", type=int, default=1000, help="blacklist entries in the full sweep")
    parser.add_argument("--no-s3", action="store_true", help="local tables only")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_HOME", str(args.work / "prefect"))
    events = int(args.events * 1_000_000)
    data = args.work / f"data-{events}-{args.entries}-{args.days}"
    generate(data, events, args.entries, args.days)

    import fsspec

    from pipelines.config.settings import S3Settings
    from pipelines.datasets import objectstore
    from pipelines.registry.registry import Registry

    items = json.loads((data / "blacklist.json").read_text())["items"]
    step = max(1, len(items) // NEW_ENTRIES)
    new_idx = {i * step for i in range(NEW_ENTRIES)}
    results: dict[str, Any] = {"events": events, "days": args.days, "entries": args.entries,
                               "load_average_start": os.getloadavg()}
    server = None
    kinds = ["local"] if args.no_s3 else ["local", "s3"]
    try:
        for kind in kinds:
            root = args.work / kind
            s3 = None
            url = None
            fs = fsspec.filesystem("file")
            if kind == "s3":
                import logging

                from moto.server import ThreadedMotoServer

                logging.getLogger("werkzeug").setLevel(logging.ERROR)
                port = free_port()
                server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
                server.start()
                s3 = S3Settings(endpoint_url=f"http://127.0.0.1:{port}", region="us-east-1",
                                access_key_id="bench", secret_access_key="bench")
                objectstore.configure(s3)
                fs = objectstore.filesystem(s3)
                fs.call_s3("create_bucket", Bucket="lake")
                url = "s3://lake/warehouse"
            results[f"{kind}_write_tables"] = write_tables(data, root, url, s3)
            registry = Registry(root / "blacklist.db")
            registry.import_optimizely({"items": [it for i, it in enumerate(items) if i not in new_idx]})
            tables = configs(root, url)
            results[f"{kind}_full"] = sweep(tables, registry.snapshot().entries, s3, fs, "full")
            registry.import_optimizely({"items": [items[i] for i in sorted(new_idx)]})
            results[f"{kind}_nightly"] = sweep(tables, registry.snapshot().entries, s3, fs, "nightly")
            results[f"{kind}_quiet"] = sweep(tables, registry.snapshot().entries, s3, fs, "quiet")
            print(kind, json.dumps({k: v for k, v in results.items() if k.startswith(kind)}), flush=True)
    finally:
        if server is not None:
            server.stop()
    results["load_average_end"] = os.getloadavg()
    (args.work / "iceberg.json").write_text(json.dumps(results, indent=2))
    print("\n| sweep | storage | seconds | plan / match / purge / verify / finish | files rewritten of | "
          "rows removed | files deleted | snapshots expired |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for night in ("full", "nightly", "quiet"):
        for kind in kinds:
            r = results[f"{kind}_{night}"]
            s = r["steps"]
            print(f"| {night} | Iceberg {kind} | {r['seconds']} | {s['plan']} / {s['match']} / {s['purge']} / "
                  f"{s['verify']} / {s['finish']} | {r['files_rewritten']} of {r['files']} | {r['rows_removed']} | "
                  f"{r['files_deleted']} | {r['snapshots_expired']} |")


if __name__ == "__main__":
    main()
