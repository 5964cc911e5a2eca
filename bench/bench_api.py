"""HTTP API throughput: the real `gdpr-sweep serve` process under `wrk` (C, keep-alive connections).

    .venv/bin/python bench/bench_api.py [--seconds 10] [--connections 16] [--threads 2] [--dir /tmp/x] [--keep]

Starts the server on a free loopback port with a fresh registry in a temporary folder (1,000 entries
added first, so status reads find some), then runs `wrk` once per phase:
  read   GET /users/{id}/blacklist-status (ids cycle over 1,000 users, a tenth of them blacklisted)
  write  POST /api/v1.0/blacklists, a new email per request (each a durable commit before the answer)
  mixed  a 4:1 mix of the two
The requests come from a Lua script (bench/wrk_api.lua) that prints requests/s and latency
percentiles as JSON at the end. Prints the server's CPU per request of each phase and a Markdown table
(requests/s, p50 / p90 / p99 latency, non-2xx answers) and checks afterwards that every answered write
is in the registry. `wrk` is the Debian
package: the script installs it with `apt-get install -y wrk` when it is missing (as root), or says
how. Nothing is written into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.lake import dataset, write_lake_config  # noqa: E402
from tests.support.procs import Server, start_server, stop_server  # noqa: E402

KEY = "bench-key-0123456789abcdef"
LUA = Path(__file__).resolve().with_name("wrk_api.lua")


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("bench_api: wrk is missing: install it with `sudo apt-get install -y wrk` (Debian package)")


def start(work: Path) -> Server:
    """`gdpr-sweep serve` on a free loopback port (tests/support/procs.py), one profiles dataset."""
    write_lake_config(work, dataset("profiles", "profiles", email="Info.Email"))
    return start_server(work, KEY, keep_log=False)


def seed(url: str) -> None:
    """1,000 users, every tenth blacklisted (by user id), so reads answer both ways."""
    with httpx.Client(base_url=url, headers={"X-Api-Key": KEY}, trust_env=False, timeout=60) as c:
        for i in range(0, 1000, 10):
            r = c.put(f"/users/u{i}/blacklist-status", json={"blacklisted": True})
            assert r.status_code == 200, r.text


def phase(wrk: str, url: str, name: str, seconds: int, connections: int, threads: int) -> dict:
    env = {**os.environ, "BENCH_PHASE": name, "BENCH_KEY": KEY}
    out = subprocess.run([wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "30s",
                          "-s", str(LUA), url], env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    return json.loads(line[len("BENCH "):])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def written(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM entries WHERE email LIKE 'w-%@example.com'").fetchone()[0]
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    wrk = ensure_wrk()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-api-"))
    work.mkdir(parents=True, exist_ok=True)
    server = start(work)
    url = server.url
    rows, writes, cpu = [], 0, []
    try:
        seed(url)
        for name in ("read", "write", "mixed"):
            before = cpu_seconds(server.proc.pid)
            r = phase(wrk, url, name, args.seconds, args.connections, args.threads)
            cpu.append(f"{name} {(cpu_seconds(server.proc.pid) - before) * 1000 / max(r['requests'], 1):.2f}")
            writes += r["writes"]
            rows.append(f"| {name} | {r['requests']} | {args.connections} | {r['seconds']:.1f} | {r['rps']:.0f} | "
                        f"{r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} | {r['non2xx']} |")
    finally:
        stop_server(server)
    stored = written(work / "blacklist.db")
    if not args.keep and args.dir is None:
        shutil.rmtree(work, ignore_errors=True)
    print(f"`wrk -t {args.threads} -c {args.connections} -d {args.seconds}s`, load average "
          f"{os.getloadavg()[0]:.1f} after the run; {stored} of {writes} answered writes found in the registry; "
          f"server CPU ms per request: {', '.join(cpu)}")
    print()
    print("| phase | requests | connections | seconds | requests/s | p50 ms | p90 ms | p99 ms | non-2xx |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    if stored < writes:
        raise SystemExit(f"bench_api: {writes - stored} answered writes are missing from the registry")


if __name__ == "__main__":
    main()
