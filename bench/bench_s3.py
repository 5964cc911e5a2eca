"""Benchmark: full, nightly and quiet sweeps of a Hive-partitioned lake on S3 (moto's server) beside
the same lake in local folders.

    .venv/bin/python bench/bench_s3.py                      # 2M events, 100k profiles, 365 daily files
    .venv/bin/python bench/bench_s3.py --events 4 --entries 2000

The data is `pipelines.sample.generate`'s (seed 7; profiles = events / 20). On S3 the events are objects at
`lake/events/date=YYYY-MM-DD/part-0.parquet` and the profiles at `lake/profiles/part-N.parquet`,
swept in place; locally the same files are a raw `source` folder swept into a versioned dataset
(`delete_raw = false`), as in bench/bench_sweep.py. Each kind is swept three times through the flow's
steps (pipelines/datasets/scaleout.py) without Prefect, so only the storage differs:

- `full`    every entry but 10 (1 % of the profiles by default), on a lake never swept;
- `nightly` the next night, 10 more entries;
- `quiet`   the night after, no new entry: nothing to remove.

moto's server runs in its own process (`moto_server`), keeping objects in memory; its requests are
counted by operation on the client side (every s3fs call goes through `S3FileSystem._call_s3`).
Results go to `<work>/s3.json` and a Markdown table printed at the end (pasted into docs/benchmarks.md).
moto is no S3: its latency is a loopback call, its throughput one Python process; the counts of
requests and bytes written are what carries over to a real store.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import prefect_env  # noqa: E402
from tests.support.procs import free_port  # noqa: E402

NEW_ENTRIES = 10
SEED = 7
DAYS = 365
CALLS: collections.Counter[str] = collections.Counter()
PUT_BYTES = [0]


def _count_requests() -> None:
    import fsspec.asyn
    import s3fs

    original = s3fs.S3FileSystem._call_s3

    async def counted(self, method, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = method if isinstance(method, str) else getattr(method, "__name__", str(method))
        CALLS[name] += 1
        if name == "put_object":
            PUT_BYTES[0] += len(kwargs.get("Body", b""))
        return await original(self, method, *args, **kwargs)

    s3fs.S3FileSystem._call_s3 = counted  # type: ignore[method-assign]
    s3fs.S3FileSystem.call_s3 = fsspec.asyn.sync_wrapper(counted)  # type: ignore[method-assign]


def generate(data: Path, events: int, entries: int) -> None:
    from pipelines.sample.generate import generate as gen

    done = data / "_bench_generated.json"
    if done.exists() and json.loads(done.read_text()) == {"events": events, "entries": entries}:
        return
    gen(data, profiles=events // 20, events=events, days=DAYS, seed=SEED, blacklist=entries + NEW_ENTRIES)
    done.write_text(json.dumps({"events": events, "entries": entries}))


def upload(endpoint: str, bucket: str, data: Path) -> int:
    import boto3

    c = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                     aws_secret_access_key="bench")
    c.create_bucket(Bucket=bucket)
    n = 0
    for f in sorted((data / "profiles").glob("*.parquet")):
        c.upload_file(str(f), bucket, f"lake/profiles/{f.name}")
        n += 1
    for f in sorted((data / "events").glob("*.parquet")):
        c.upload_file(str(f), bucket, f"lake/events/date={f.stem}/part-0.parquet")
        n += 1
    return n


def settings_for(kind: str, root: Path, data: Path, endpoint: str, bucket: str):  # type: ignore[no-untyped-def]
    from pipelines.config.settings import load_settings
    from tests.support.lake import events, profiles, s3_table, two_datasets, write_lake_config

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    sweep = {"work_dir": root / "work", "report_dir": root / "reports", "blacklist_db": root / "blacklist.db",
             "allow_paths_outside_base": True, "link_devices_through_events": True, "delete_raw": False,
             "duckdb_memory_limit": "1GB"}
    if kind == "s3":
        datasets = [profiles(f"s3://{bucket}/lake/profiles"), events(f"s3://{bucket}/lake/events")]
        path = write_lake_config(root, *datasets, sweep=sweep, s3=s3_table(endpoint, key="bench"))
    else:
        path = write_lake_config(root, *two_datasets(data, root / "clean"), sweep=sweep)
    return load_settings(path)


def split_blacklist(data: Path) -> tuple[list[dict], list[dict]]:
    items = json.loads((data / "blacklist.json").read_text())["items"]
    step = len(items) // NEW_ENTRIES
    new_idx = {i * step for i in range(NEW_ENTRIES)}
    return [it for i, it in enumerate(items) if i not in new_idx], [items[i] for i in sorted(new_idx)]


def sweep(settings, run_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """One sweep through scaleout's steps, as flows/sweep.py wires them (one partition per dataset)."""
    from pipelines.core.match import entries_table, with_versions
    from pipelines.datasets import scaleout
    from pipelines.datasets.sweep import match_fingerprint
    from pipelines.registry.registry import Registry

    CALLS.clear()
    PUT_BYTES[0] = 0
    steps: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        steps[name] = round(now - t, 2)
        t = now

    snap = Registry(settings.blacklist_db).snapshot()
    entries = with_versions(entries_table(snap.entries), snap.added)
    fingerprint = match_fingerprint(settings.datasets, settings.link_devices_through_events)
    plans = [scaleout.plan(settings, ds, fingerprint) for ds in settings.datasets]
    lap("plan")
    parts = scaleout.partitions(plans, 1)
    by_name = {p.config.name: p for p in plans}
    links = [scaleout.link_partition(settings, entries, by_name[x.dataset], x.relpaths, snap.version) for x in parts]
    linked = scaleout.union_linked(x.linked for x in links)
    per_part = [scaleout.match_partition(settings, entries, by_name[x.dataset], x.relpaths, linked, snap.version, own)
                for x, own in zip(parts, links, strict=True)]
    matches = scaleout.merge_matches(plans, parts, per_part, linked)
    lap("match")
    outcomes = []
    for p in plans:
        m = matches.datasets[p.config.name]
        scaleout.start_version(settings, p, run_id)
        rels = [f.relpath for f in p.files]
        files = scaleout.write_partition(settings, p, rels, {r: m.drops[r] for r in rels if r in m.drops}, run_id)
        outcomes.append(scaleout.finish_dataset(settings, p, files, m, run_id, snap.version, fingerprint))
    lap("write")
    pieces = scaleout.verification_slices(outcomes, 1)
    verification = scaleout.merge_verifications(
        [scaleout.verify_partition(settings, entries_table(snap.entries), piece, matches.linked_devices)
         for piece in pieces])
    assert verification.ok, verification
    lap("verify")
    for p, o in zip(plans, outcomes, strict=True):
        scaleout.publish(settings, p, o, [e.email for e in snap.entries if e.email and e.scope is None])
    lap("publish")
    return {"seconds": round(sum(steps.values()), 2), "steps": steps,
            "files": sum(len(o.files) for o in outcomes),
            "files_rewritten": sum(f.rewritten for o in outcomes for f in o.files),
            "rows_removed": sum(o.rows_removed for o in outcomes),
            "requests": dict(sorted(CALLS.items())), "put_mb": round(PUT_BYTES[0] / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gdpr-sweep-bench-s3"))
    parser.add_argument("--events", type=float, default=2, help="millions of events")
    parser.add_argument("--entries", type=int, default=1000, help="blacklist entries in the full sweep")
    args = parser.parse_args()
    prefect_env.configure_process(args.work / "prefect")
    events = int(args.events * 1_000_000)
    data = args.work / f"data-{events}-{args.entries}"
    generate(data, events, args.entries)
    _count_requests()

    from pipelines.datasets import objectstore
    from pipelines.registry.registry import Registry

    port = free_port()
    server = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {"events": events, "profiles": events // 20,
                               "entries": args.entries, "load_average_start": os.getloadavg()}
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        results["objects"] = upload(endpoint, "lake", data)
        base, new = split_blacklist(data)
        for kind in ("local", "s3"):
            settings = settings_for(kind, args.work / kind, data, endpoint, "lake")
            if kind == "s3":
                objectstore.configure(settings.s3)
            registry = Registry(settings.blacklist_db)
            registry.import_optimizely({"items": base})
            results[f"{kind}_full"] = sweep(settings, "full")
            registry.import_optimizely({"items": new})
            results[f"{kind}_nightly"] = sweep(settings, "nightly")
            results[f"{kind}_quiet"] = sweep(settings, "quiet")
            print(kind, json.dumps({k: v for k, v in results.items() if k.startswith(kind)}), flush=True)
    finally:
        server.terminate()
        server.wait()
    results["load_average_end"] = os.getloadavg()
    (args.work / "s3.json").write_text(json.dumps(results, indent=2))
    print("\n| sweep | storage | seconds | plan / match / write / verify / publish | files rewritten of | "
          "rows removed | PUTs (MB) | GETs | LISTs | HEADs | DELETEs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for night in ("full", "nightly", "quiet"):
        for kind in ("local", "s3"):
            r = results[f"{kind}_{night}"]
            s, q = r["steps"], r["requests"]
            s3only = (f"{q.get('put_object', 0)} ({r['put_mb']}) | {q.get('get_object', 0)} | "
                      f"{q.get('list_objects_v2', 0) + q.get('list_object_versions', 0)} | {q.get('head_object', 0)} | "
                      f"{q.get('delete_object', 0) + q.get('delete_objects', 0)}") if kind == "s3" else "- | - | - | - | -"
            print(f"| {night} | {kind} | {r['seconds']} | {s['plan']} / {s['match']} / {s['write']} / {s['verify']} / "
                  f"{s['publish']} | {r['files_rewritten']} of {r['files']} | {r['rows_removed']} | {s3only} |")


if __name__ == "__main__":
    main()
