"""Render bench/targets.py's targets.json as issue 19's section of docs/benchmarks.md.

    .venv/bin/python bench/report_targets.py /tmp/gdpr-sweep-targets/targets.json
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

PEERS = ("duckdb_antijoin", "polars", "pyarrow")


def _verdict(ok: bool | str | None) -> str:
    """met / not met for a target; a row that is no target gives its own word (e.g. "reference")."""
    if isinstance(ok, str):
        return ok
    return "not measured" if ok is None else ("met" if ok else "**not met**")


def _row(target: str, measured: str, ok: bool | str | None) -> str:
    return f"| {target} | {measured} | {_verdict(ok)} |"


def _variants(results: dict[str, Any], step: str, scale: str = "20") -> dict[str, Any] | None:
    sweep = results.get(step)
    return sweep["scales"][scale]["variants"] if sweep and scale in sweep.get("scales", {}) else None


def _peer(v: dict[str, Any]) -> tuple[str, float]:
    name = min(PEERS, key=lambda p: v[p]["seconds"])
    return name, v[name]["seconds"]


def sweep_rows(results: dict[str, Any]) -> list[str]:
    rows = []
    for step, lake in (("daily", "365 daily files"), ("large", "16 large files")):
        v = _variants(results, step)
        if v is None:
            rows.append(_row(f"full sweep and `gdpr-sweep sweep`, {lake}", "not run", None))
            continue
        full, floor, cpu = v["sweep_full"]["seconds"], v["copy"]["seconds"], v["sweep_full"]["cpu_seconds"]
        peer, fastest = _peer(v)
        rows.append(_row(f"{lake}: full sweep (flow, verification, report) <= 1.15 x the floor (DuckDB plain "
                         f"`COPY`, {floor:.1f} s)", f"{full:.1f} s = {full / floor:.2f} x (CPU {cpu:.1f} s = "
                         f"{cpu / v['copy']['cpu_seconds']:.2f} x)", full <= 1.15 * floor))
        rows.append(_row(f"{lake}: full sweep <= 1.25 x the fastest peer ({peer}, {fastest:.1f} s)",
                         f"{full / fastest:.2f} x", full <= 1.25 * fastest))
        cli = v["sweep_cli"]["seconds"]
        rows.append(_row(f"{lake}: `gdpr-sweep sweep` start to exit <= 1.5 x the fastest peer",
                         f"{cli:.1f} s = {cli / fastest:.2f} x", cli <= 1.5 * fastest))
        overhead = full - v["sweep_direct"]["seconds"]
        rows.append(_row(f"{lake}: Prefect's in-flow overhead <= 1 s (flow on the temporary API minus the same "
                         "steps without the engine)", f"{overhead:.1f} s ({full:.1f} - "
                         f"{v['sweep_direct']['seconds']:.1f})", overhead <= 1))
        if "sweep_incremental" in v:
            inc = v["sweep_incremental"]["seconds"]
            scan, copy = v["scan_identity"]["seconds"], v["copy_affected"]["seconds"]
            files = " + ".join(f"{n} {kind}" for kind, n in v["copy_affected"].get("files", {}).items())
            rows.append(_row(f"{lake}: nightly, 10 new entries, whole-blacklist check of every file, <= 1.3 x its "
                             f"floor (identity scan {scan:.1f} s + copy of the affected files ({files}) {copy:.1f} s)",
                             f"{inc:.1f} s = {inc / (scan + copy):.2f} x", inc <= 1.3 * (scan + copy)))
    return rows


def growth_rows(results: dict[str, Any]) -> list[str]:
    small, big = _variants(results, "daily", "20"), _variants(results, "daily", "100")
    if small is None or big is None:
        return [_row("100M events: peak memory <= 1 GB; 5 x the data <= 5 x the time", "not run", None)]
    peak = big["sweep_full"]["peak_rss_mb"]
    ratio = big["sweep_full"]["seconds"] / small["sweep_full"]["seconds"]
    floor = big["copy"]["seconds"] / small["copy"]["seconds"]
    return [_row("100M events: peak memory of the full sweep <= 1 GB", f"{peak:,} MB", peak <= 1024),
            _row("100M events: 5 x the data (20M -> 100M) <= 5 x the time",
                 f"{ratio:.2f} x ({small['sweep_full']['seconds']:.1f} s -> {big['sweep_full']['seconds']:.1f} s; "
                 f"the floor's copy {floor:.2f} x)", ratio <= 5)]


def startup_rows(results: dict[str, Any]) -> list[str]:
    runs = results.get("startup")
    if not runs:
        return [_row("demo data, start to exit <= 8 s; in-flow overhead", "not run", None)]
    med = {name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items()}
    rows = [_row(f"demo data: `gdpr-sweep sweep` start to exit <= 8 s, {label}", f"{med[name]:.1f} s",
                 med[name] <= 8)
            for name, label in (("cli_no_server", "no server (the CLI's default)"),
                                ("cli_running_server", "a running Prefect server"))]
    rows.append(_row("demo data, for reference: the flow on Prefect's temporary API in a new process (what "
                     "`gdpr-sweep sweep` ran before decision 0291; it no longer starts that API)",
                     f"{med['flow_temporary_api']:.1f} s", "reference"))
    for name, label in (("in_flow_overhead", "running server"), ("in_flow_overhead_temporary_api", "temporary API")):
        if name in med:
            cpu = statistics.median(r.get("overhead_cpu_seconds", float("nan")) for r in runs[name])
            rows.append(_row(f"demo data: Prefect's in-flow overhead <= 1 s ({label}, warm process)",
                             f"{med[name]:.2f} s (CPU {cpu:.2f} s)", med[name] <= 1))
    return rows


def service_rows(results: dict[str, Any]) -> list[str]:
    rows = []
    reg = results.get("registry")
    if reg:
        wall, cpu, n = reg["wall"]["import"], reg["cpu"]["import"], reg["entries"]
        scaled = wall * 10_000_000 / n
        note = "" if n == 10_000_000 else f" (measured at {n:,}: {wall:.1f} s, scaled)"
        rows.append(_row("registry: 10M entries imported <= 60 s, each in the history",
                         f"{scaled:.1f} s{note} (CPU {cpu:.1f} s; peak {reg['peak_rss']})", scaled <= 60))
    api = results.get("api")
    if api:
        r, w = api["read"], api["write"]
        rows.append(_row("HTTP API >= 1,000 status reads/s (`wrk`, 16 connections)",
                         f"{r['rps']:,.0f}/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms", r["rps"] >= 1000))
        rows.append(_row("HTTP API >= 300 durable writes/s", f"{w['rps']:,.0f}/s, p50 {w['p50_ms']} ms, "
                         f"p99 {w['p99_ms']} ms", w["rps"] >= 300))
    return rows


def profile_lines(results: dict[str, Any]) -> list[str]:
    prof = results.get("profile")
    if not prof:
        return []
    total = prof["samples"]
    lines = ["", f"Profile of one full sweep of the daily lake (py-spy, 50 samples/s, {total:,} samples over all "
             "threads; the flow's function without Prefect):", "",
             "| project function (inclusive) | share | | innermost frame (self) | share |", "| --- | ---: | --- | --- | ---: |"]
    for (fn, n), (leaf, m) in zip(prof["inclusive"], prof["self"], strict=False):
        lines.append(f"| `{fn}` | {100 * n / total:.0f} % | | `{leaf}` | {100 * m / total:.0f} % |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    sweep = results.get("daily") or results.get("large") or {}
    m = sweep.get("machine", {})
    lines = [f"One run of `{results['command']}` ({results['started']} to {results['finished']}).", ""]
    if m:
        lines += [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}, DuckDB "
                  f"{m['duckdb']}, Polars {m['polars']}, pyarrow {m['pyarrow']}, Prefect {m['prefect']}; gdpr-sweep "
                  f"at commit `{m['git_commit']}`; load average at the start {m['load_average_at_start'][0]:.1f}.", ""]
    lines += ["| target | measured | |", "| --- | --- | --- |", *sweep_rows(results), *growth_rows(results),
              *startup_rows(results), *service_rows(results)]
    return "\n".join(lines + profile_lines(results))


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
