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
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

KEY = "bench-key-0123456789abcdef"
CONFIG = """
[sweep]
blacklist_db = "blacklist.db"

[[datasets]]
name = "profiles"
kind = "profiles"
path = "clean/profiles"
email = "Info.Email"
"""


def start(work: Path) -> tuple[subprocess.Popen, str]:
    (work / "gdpr-sweep.toml").write_text(CONFIG)
    env = {**os.environ, "GDPR_SWEEP_API_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-m", "gdpr_sweep", "--config", str(work / "gdpr-sweep.toml"), "serve",
                             "--port", "0"], cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    url = re.search(r"http://\S+", proc.stdout.readline()).group(0)
    with httpx.Client(base_url=url, trust_env=False) as c:
        for _ in range(600):
            try:
                if c.get("/healthz").status_code == 200:
                    return proc, url
            except httpx.TransportError:
                time.sleep(0.05)
    raise SystemExit("server did not become healthy")


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
    proc, url = start(work)
    try:
        print(f"| phase | requests | clients | seconds | requests/s | p50 ms | p95 ms |  (load avg {os.getloadavg()[0]:.1f})")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name in ("read", "write", "mixed"):
            r = phase(url, name, args.requests, args.clients)
            print(f"| {name} | {r['requests']} | {args.clients} | {r['seconds']:.1f} | {r['rps']:.0f} | "
                  f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if not args.keep and args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
