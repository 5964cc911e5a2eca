"""HTTP API throughput: the real `gdpr-sweep serve` process under concurrent clients.

    .venv/bin/python bench/bench_api.py [--requests 4000] [--clients 16] [--dir /tmp/x] [--keep]

Starts the server on a free loopback port with a fresh registry in a temporary folder, then sends
`--requests` requests from `--clients` threads (httpx, keep-alive), in three phases: reads only
(GET status), writes only (POST new entries), and a mix like tests/api/test_burst.py. Prints a
Markdown table (requests/s, p50 / p95 latency) for docs/benchmarks.md. Nothing is written into the
repository.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.lake import dataset, write_lake_config  # noqa: E402
from tests.support.procs import Server, start_server, stop_server  # noqa: E402

KEY = "bench-key-0123456789abcdef"


def start(work: Path) -> Server:
    """`gdpr-sweep serve` on a free loopback port (tests/support/procs.py), one profiles dataset."""
    write_lake_config(work, dataset("profiles", "profiles", email="Info.Email"))
    return start_server(work, KEY, keep_log=False)


def phase(url: str, name: str, total: int, clients: int) -> dict[str, float]:
    per_client = total // clients

    def run(n: int) -> list[float]:
        rng = random.Random(n)
        latencies = []
        with httpx.Client(base_url=url, headers={"X-Api-Key": KEY}, trust_env=False, timeout=120) as c:
            for i in range(per_client):
                kind = name if name != "mixed" else rng.choice(["read", "read", "write", "status", "event"])
                t = time.perf_counter()
                if kind == "read":
                    r = c.get(f"/users/b{n}-{i % 50}/blacklist-status")
                elif kind == "write":
                    r = c.post("/api/v1.0/blacklists", json={"Email": f"{name}{n}-{i}@example.com"})
                elif kind == "status":
                    r = c.put(f"/users/b{n}-{i % 50}/blacklist-status", json={"blacklisted": rng.random() < 0.5})
                else:
                    r = c.post("/events", json={"id": f"b{n}-{i % 50}", "events": [{"event": "Blacklisted"}]})
                latencies.append(time.perf_counter() - t)
                assert r.status_code in (200, 201), r.text
        return latencies

    start_t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [x for chunk in pool.map(run, range(clients)) for x in chunk]
    elapsed = time.perf_counter() - start_t
    latencies.sort()
    return {"requests": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
            "p50_ms": statistics.median(latencies) * 1000,
            "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-api-"))
    work.mkdir(parents=True, exist_ok=True)
    server = start(work)
    url = server.url
    try:
        print(f"| phase | requests | clients | seconds | requests/s | p50 ms | p95 ms |  (load avg {os.getloadavg()[0]:.1f})")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name in ("read", "write", "mixed"):
            r = phase(url, name, args.requests, args.clients)
            print(f"| {name} | {r['requests']} | {args.clients} | {r['seconds']:.1f} | {r['rps']:.0f} | "
                  f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    finally:
        stop_server(server)
        if not args.keep and args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
