"""Render bench/bench_sweep.py's results.json as the "Sweep" section of docs/benchmarks.md.

    .venv/bin/python bench/report_sweep.py /tmp/gdpr-sweep-bench/results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

LABELS = {
    "sweep_full": "(a) gdpr-sweep full sweep (flow, verification and report included)",
    "copy": "(b) floor: DuckDB plain `COPY`, no filter",
    "duckdb_antijoin": "(c) DuckDB `COPY (... ANTI JOIN ...)`",
    "polars": "(d) Polars streaming anti join (`sink_parquet`)",
    "pyarrow": "(e) pyarrow per-file rewrite (`is_in` mask)",
    "sweep_direct": "gdpr-sweep full sweep, the flow's steps without Prefect's engine (decision 0291)",
    "sweep_cli": "`gdpr-sweep sweep` start to exit, no Prefect server (new process)",
}
PEERS = ("duckdb_antijoin", "polars", "pyarrow")
SHORT = {"sweep_full": "gdpr-sweep", "copy": "floor copy", "duckdb_antijoin": "duckdb anti-join",
         "polars": "polars", "pyarrow": "pyarrow"}


def _bar(value: float, top: float, width: int = 40) -> str:
    return "█" * max(1, round(width * value / top)) if top else ""


def _runs(result: dict[str, Any]) -> str:
    return ", ".join(f"{x:.1f}" for x in result.get("runs_seconds", [result["seconds"]]))


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def markdown(out: dict[str, Any]) -> str:
    m = out["machine"]
    scales = out["scales"]
    main = max(scales, key=lambda k: len(scales[k]["variants"]))
    s = scales[main]
    v = s["variants"]
    d = s["data"]
    floor = v["copy"]["seconds"]
    full = v["sweep_full"]["seconds"]
    shape = out.get("shape", "daily")
    files = d.get("files", {"events": d["days"], "profiles": "daily"})
    lines = [
        f"## Sweep ({shape} lake)",
        "",
        f"One run of `{out['command']}` ({out['started']} to {out.get('finished', '?')}).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}; Python {m['python']}, "
        f"DuckDB {m['duckdb']}, Polars {m['polars']}, pyarrow {m['pyarrow']}, Prefect {m['prefect']}; "
        f"gdpr-sweep at commit `{m['git_commit']}`. Load average at start {m['load_average_at_start'][0]:.1f}, "
        f"at end {m.get('load_average_at_end', [float('nan')])[0]:.1f} (the benchmark itself keeps the 2 cores busy: about 2 when nothing else runs).",
        "",
        f"Data (`pipelines.sample.generate`, seed {d['seed']}): {d['events']:,} events in {files['events']} "
        f"{'daily' if shape == 'daily' else 'large (rewritten by DuckDB)'} files "
        f"({d['bytes']['events'] / 1e6:,.0f} MB zstd), {d['profiles']:,} profiles "
        f"({d['bytes']['profiles'] / 1e6:,.0f} MB); {d['entries_full']:,} blacklist entries for the full sweep "
        f"(emails, half of them scoped, one user id), {d['entries_new']} more for the nightly run.",
        "",
        f"Each variant ran {s.get('repeat', 1)} times, round by round (every round runs all variants in the "
        "same order, so a slow spell hits them alike); the tables show each variant's median run, and the "
        "last column every run's wall seconds.",
        "",
        f"### Full sweep, {int(main)}M events",
        "",
        "| variant | wall s | × floor | CPU s | × floor CPU | peak RSS | runs (wall s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    floor_cpu = v["copy"]["cpu_seconds"]
    for key in ("sweep_full", "sweep_direct", "sweep_cli", "copy", "duckdb_antijoin", "polars", "pyarrow"):
        if key in v:
            lines.append(f"| {LABELS[key]} | {v[key]['seconds']:.1f} | {v[key]['seconds'] / floor:.2f} | "
                         f"{v[key]['cpu_seconds']:.1f} | {v[key]['cpu_seconds'] / floor_cpu:.2f} | "
                         f"{v[key]['peak_rss_mb']:,} MB | {_runs(v[key])} |")
    lines += [
        "",
        f"Prefect's fixed start-up (import, temporary API server, a first flow run), not in the row above: "
        f"{v['sweep_full']['prefect_startup_seconds']:.1f} s. Files rewritten by the full sweep: "
        f"{v['sweep_full']['files_rewritten']}; the rest were hard links to the raw files (no match, zero cost).",
        "",
        "```mermaid",
        "xychart-beta",
        f'    title "Full sweep, {int(main)}M events: seconds (lower is better)"',
        "    x-axis [" + ", ".join(f'"{SHORT[k]}"' for k in SHORT if k in v) + "]",
        '    y-axis "seconds"',
        "    bar [" + ", ".join(f"{v[k]['seconds']:.1f}" for k in SHORT if k in v) + "]",
        "```",
        "",
        "```text",
    ]
    top = max(v[k]["seconds"] for k in SHORT if k in v)
    for k in SHORT:
        if k in v:
            lines.append(f"{SHORT[k]:>17} {v[k]['seconds']:6.1f} s {_bar(v[k]['seconds'], top)}")
    lines += ["```", ""]
    if "sweep_steps" in v:
        steps = v["sweep_steps"]
        lines += [
            "Where the full sweep's time goes (the flow's steps called directly, no Prefect, no report; "
            f"{steps['files_rewritten']} files rewritten): "
            + ", ".join(f"{k} {sec:.1f} s" for k, sec in steps["steps"].items())
            + f"; total {steps['seconds']:.1f} s, {steps['seconds'] / floor:.2f} × floor, "
              f"peak {steps['peak_rss_mb']:,} MB.",
            "",
        ]
    inc_ok = "sweep_incremental" in v
    if inc_ok:
        inc = v["sweep_incremental"]
        scan, copy_aff = v["scan_identity"]["seconds"], v["copy_affected"]["seconds"]
        inc_floor = scan + copy_aff
        inc_floor_cpu = v["scan_identity"]["cpu_seconds"] + v["copy_affected"]["cpu_seconds"]
        lines += [
            f"### Nightly incremental sweep: {d['entries_new']} new entries",
            "",
            "| what | wall s | CPU s | peak RSS | runs (wall s) |",
            "| --- | ---: | ---: | ---: | --- |",
            f"| gdpr-sweep incremental sweep (flow, verification and report included) | {inc['seconds']:.1f} | "
            f"{inc['cpu_seconds']:.1f} | {inc['peak_rss_mb']:,} MB | {_runs(inc)} |",
            f"| DuckDB scan of the identity columns of every file | {scan:.1f} | "
            f"{v['scan_identity']['cpu_seconds']:.1f} | {v['scan_identity']['peak_rss_mb']:,} MB | "
            f"{_runs(v['scan_identity'])} |",
            f"| DuckDB plain copy of just the affected files ({v['copy_affected']['files']}) | {copy_aff:.1f} | "
            f"{v['copy_affected']['cpu_seconds']:.1f} | {v['copy_affected']['peak_rss_mb']:,} MB | "
            f"{_runs(v['copy_affected'])} |",
            f"| its floor: scan + copy of the affected files | {inc_floor:.1f} | {inc_floor_cpu:.1f} | |",
            "",
            f"Files rewritten: {inc['files_rewritten']}; every other file of the new version is a hard link to "
            f"the previous one (not read, not recompressed). Rows removed: {inc['rows_removed']}. "
            f"Prefect start-up, separate: {inc['prefect_startup_seconds']:.1f} s.",
            "",
        ]
    lines += ["### Growth", "", "| events | floor copy s | gdpr-sweep full s | × floor | sweep peak RSS |",
              "| ---: | ---: | ---: | ---: | ---: |"]
    for k in sorted(scales, key=int):
        sv = scales[k]["variants"]
        lines.append(f"| {int(k)}M | {sv['copy']['seconds']:.1f} | {sv['sweep_full']['seconds']:.1f} | "
                     f"{sv['sweep_full']['seconds'] / sv['copy']['seconds']:.2f} | "
                     f"{sv['sweep_full']['peak_rss_mb']:,} MB |")
    lines += ["", "### Targets", "", "Ratios of wall-clock time, and of CPU time (steadier when other work shares "
              "the machine).", "", "| target | wall | CPU | |", "| --- | --- | --- | --- |"]
    full_cpu = v["sweep_full"]["cpu_seconds"]
    lines.append(f"| full sweep ≤ 1.15 × floor | {full / floor:.2f} × ({full:.1f} s vs {floor:.1f} s) | "
                 f"{full_cpu / floor_cpu:.2f} × | {_verdict(full <= 1.15 * floor)} |")
    peers = [k for k in PEERS if k in v]
    if peers:
        best = min(peers, key=lambda k: v[k]["seconds"])
        bs, bc = v[best]["seconds"], v[best]["cpu_seconds"]
        lines.append(f"| full sweep ≤ 1.25 × the fastest peer ({SHORT[best]}) | {full / bs:.2f} × ({full:.1f} s vs "
                     f"{bs:.1f} s) | {full_cpu / bc:.2f} × | {_verdict(full <= 1.25 * bs)} |")
        if "sweep_cli" in v:
            cli, cli_cpu = v["sweep_cli"]["seconds"], v["sweep_cli"]["cpu_seconds"]
            lines.append(f"| `gdpr-sweep sweep` start to exit ≤ 1.5 × the fastest peer | {cli / bs:.2f} × "
                         f"({cli:.1f} s vs {bs:.1f} s) | {cli_cpu / bc:.2f} × | {_verdict(cli <= 1.5 * bs)} |")
    if "sweep_direct" in v:
        over = full - v["sweep_direct"]["seconds"]
        lines.append(f"| Prefect's in-flow overhead ≤ 1 s (flow run minus the same steps without the engine) | "
                     f"{over:.1f} s | {full_cpu - v['sweep_direct']['cpu_seconds']:.1f} CPU-s | {_verdict(over <= 1.0)} |")
    if inc_ok:
        lines.append(f"| incremental ≤ 1.3 × (identity scan + copy of affected files) | {inc['seconds'] / inc_floor:.2f} × "
                     f"({inc['seconds']:.1f} s vs {inc_floor:.1f} s) | {inc['cpu_seconds'] / inc_floor_cpu:.2f} × | "
                     f"{_verdict(inc['seconds'] <= 1.3 * inc_floor)} |")
        lines.append(f"| incremental ≤ 0.25 × full sweep | {inc['seconds'] / full:.2f} × | "
                     f"{inc['cpu_seconds'] / full_cpu:.2f} × | {_verdict(inc['seconds'] <= 0.25 * full)} |")
    peak = max(x["peak_rss_mb"] for x in (v["sweep_full"], v.get("sweep_incremental", v["sweep_full"])))
    lines.append(f"| peak memory ≤ 1 GB at {int(main)}M | {peak:,} MB (sweep process) | | {_verdict(peak <= 1024)} |")
    bigger = [k for k in scales if int(k) > int(main)]
    if bigger:
        big = max(bigger, key=int)
        bp = scales[big]["variants"]["sweep_full"]["peak_rss_mb"]
        lines.append(f"| peak memory ≤ 1 GB at {int(big)}M too | {bp:,} MB ({bp / peak:.2f} × the {int(main)}M peak) | | "
                     f"{_verdict(bp <= 1024)} |")
    smaller = [k for k in scales if int(k) * 5 == int(main)]
    larger = [k for k in scales if int(k) == int(main) * 5]
    for lo, hi in ([(smaller[0], main)] if smaller else []) + ([(main, larger[0])] if larger else []):
        r = scales[hi]["variants"]["sweep_full"]["seconds"] / scales[lo]["variants"]["sweep_full"]["seconds"]
        rc = scales[hi]["variants"]["sweep_full"]["cpu_seconds"] / scales[lo]["variants"]["sweep_full"]["cpu_seconds"]
        lines.append(f"| 5 × events ≤ 5.5 × time ({int(lo)}M → {int(hi)}M) | {r:.2f} × | {rc:.2f} × | {_verdict(r <= 5.5)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
