"""Issue 19's targets in one run: every benchmark one after the other, a profile, and one table.

    ./scripts/bench                                      # installs what it needs, then runs this
    .venv/bin/python bench/targets.py --work /tmp/gdpr-sweep-targets
    .venv/bin/python bench/targets.py --only api,registry  # some steps again; the others' results are reused

Steps (each a benchmark of this folder in its own process, on an otherwise idle machine):

- `daily`    bench_sweep.py --scales 20,100: 20M events in 365 daily files (every variant, `--repeat`
             rounds), and 100M events (the floor and the full sweep, once: memory and growth);
- `large`    bench_sweep.py --shape large: the same 20M events in 16 large files;
- `profile`  py-spy samples one full sweep of the daily lake (the flow's function, no Prefect);
- `startup`  bench_startup.py: `gdpr-sweep sweep` on the demo data, start to exit, with and without
             a Prefect server, and the in-flow overhead;
- `api`      bench_api.py: status reads and durable writes with `wrk`;
- `registry` bench_registry.py --entries 10000000.

Each step's output stays in `<work>/<step>.out`; the results go to `<work>/targets.json` and the
Markdown section (the table of docs/benchmarks.md) is printed at the end. The residual scan is kept
out of the sweep's figures (`GDPR_SWEEP_BENCH_SCAN=off`; it has its own benchmark).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
STEPS = ("daily", "large", "profile", "startup", "api", "registry")


def bench(name: str, *args: str) -> list[str]:
    return [PY, str(ROOT / "bench" / name), *args]


def commands(work: Path, repeat: int, registry_entries: int) -> dict[str, list[str]]:
    sweep = ("--work", str(work / "sweep"), "--repeat", str(repeat))
    return {
        "daily": bench("bench_sweep.py", *sweep, "--scales", "20,100"),
        "large": bench("bench_sweep.py", *sweep, "--scales", "20", "--shape", "large"),
        "startup": bench("bench_startup.py", "--work", str(work / "startup"), "--rounds", str(repeat)),
        "api": bench("bench_api.py"),
        "registry": bench("bench_registry.py", "--entries", str(registry_entries)),
    }


def run_step(work: Path, name: str, command: list[str]) -> None:
    env = {**os.environ, "GDPR_SWEEP_BENCH_SCAN": "off"}
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(command)}", flush=True)
    with open(work / f"{name}.out", "w") as out:
        proc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"targets: step {name} failed (exit {proc.returncode}); see {work / (name + '.out')}")


# ---------------------------------------------------------------------------------------------
# The profile: py-spy's raw stacks of one full sweep (the flow's function), summed per function.


def run_profile(work: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_sweep as b

    scale = b.Scale(work / "sweep", 20)
    base, _ = b.split_blacklist(scale)
    b.reset_sweep_state(scale, base)
    raw = work / "profile.raw"
    command = [str(Path(PY).parent / "py-spy"), "record", "--format", "raw", "--rate", "50", "--output", str(raw),
               "--", *bench("bench_sweep.py", "--variant", "sweep_direct", "--scale", "20",
                            "--work", str(work / "sweep"))]
    run_step(work, "profile", command)


def profile_top(raw: Path, top: int = 15) -> dict[str, Any]:
    """Samples per function: where it is on the stack (inclusive) and where it is the innermost (self)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    ours = [(f, n) for f, n in inclusive.most_common() if f.startswith(("pipelines/", "flows/"))]
    return {"samples": total, "inclusive": ours[:top], "self": own.most_common(top)}


def _frame(frame: str) -> str:
    """`fn (/path/to/site-packages/pkg/mod.py:12)` -> `pkg/mod.py:fn` (project files relative to the root)."""
    m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not m:
        return frame
    fn, path = m.groups()
    path = path.removeprefix(str(ROOT) + "/")
    path = re.sub(r".*/site-packages/", "", path)
    return f"{path}:{fn}"


# ---------------------------------------------------------------------------------------------
# Reading each step's results.


def collect(work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path in (("daily", work / "sweep" / "results.json"), ("large", work / "sweep" / "results-large.json"),
                       ("startup", work / "startup" / "results.json")):
        if path.exists():
            out[name] = json.loads(path.read_text())
    if (work / "api.out").exists():
        out["api"] = api_rows((work / "api.out").read_text())
    if (work / "registry.out").exists():
        out["registry"] = registry_result((work / "registry.out").read_text())
    if (work / "profile.raw").exists():
        out["profile"] = profile_top(work / "profile.raw")
    return out


def api_rows(text: str) -> dict[str, dict[str, float]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[0] in ("read", "write", "mixed"):
            rows[cells[0]] = {"rps": float(cells[4]), "p50_ms": float(cells[5]), "p99_ms": float(cells[7]),
                              "non2xx": int(cells[8])}
    return rows


def registry_result(text: str) -> dict[str, Any]:
    result = json.loads(next(line for line in text.splitlines() if line.startswith("{")))
    row = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()][-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    result["entries"] = int(cells[0].replace(",", ""))
    result["peak_rss"] = cells[10]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gdpr-sweep-targets"))
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the 20M sweeps and of the start-up (median)")
    parser.add_argument("--registry-entries", type=int, default=10_000_000)
    parser.add_argument("--only", help=f"comma-separated steps to run ({', '.join(STEPS)}); default: all")
    args = parser.parse_args()
    steps = args.only.split(",") if args.only else list(STEPS)
    if unknown := set(steps) - set(STEPS):
        raise SystemExit(f"targets: unknown step(s) {', '.join(sorted(unknown))}; known: {', '.join(STEPS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    if shutil.which("py-spy", path=str(Path(PY).parent)) is None and "profile" in steps:
        raise SystemExit("targets: py-spy is not installed in this environment; run ./scripts/bench")
    cmds = commands(args.work, args.repeat, args.registry_entries)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for step in STEPS:
        if step in steps:
            run_profile(args.work) if step == "profile" else run_step(args.work, step, cmds[step])
    from bench.report_targets import markdown  # noqa: PLC0415 (after ROOT is on the path)

    results = {"command": " ".join(["bench/targets.py", *sys.argv[1:]]), "started": started,
               "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **collect(args.work)}
    (args.work / "targets.json").write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
