"""Where a nightly sweep's time goes: cProfile of the flow's function (no Prefect engine), 10 new entries.

    GDPR_SWEEP_BENCH_SCAN=off .venv/bin/python bench/profile_nightly.py --work /tmp/nightly-bench --scale 2

Uses `bench/bench_sweep.py`'s data and configuration for the scale (generated on first use): a full
sweep of the base blacklist once, its state kept in `<work>/scale-<N>m.after-full`; then each round
restores that state, adds the 10 "new" entries and runs the nightly sweep under cProfile. Prints the
wall and CPU seconds of each round and the top of the profile (cumulative time) of the last one.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import shutil
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_sweep as bench  # noqa: E402

STATE = ("clean", "reports", "work", "landing", "raw", "blacklist.db", "blacklist.db-wal", "blacklist.db-shm")


def _copy_state(src: Path, dst: Path) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    names = [n for n in STATE if (src / n).exists()]
    if names:  # cp -a keeps the hard links between a dataset's versions
        subprocess.run(["cp", "-a", *names, str(dst)], cwd=src, check=True)


def _restore(saved: Path, root: Path) -> None:
    for n in STATE:
        p = root / n
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    names = [n for n in STATE if (saved / n).exists()]
    subprocess.run(["cp", "-a", *names, str(root)], cwd=saved, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/nightly-bench"))
    parser.add_argument("--scale", type=int, default=2, help="millions of events")
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--inline", action="store_true", help="run mapped steps in the calling thread, so the "
                        "profile sees them (cProfile follows one thread)")
    parser.add_argument("--plain", action="store_true", help="no cProfile (its overhead inflates Python code "
                        "several times): wall and CPU seconds only, e.g. under `py-spy record`")
    parser.add_argument("--dump", type=Path, help="also write the last round's profile here (pstats)")
    args = parser.parse_args()
    scale = bench.Scale(args.work, args.scale)
    bench.ensure_data(scale, args.entries)
    scale.root.mkdir(parents=True, exist_ok=True)
    bench.write_config(scale)
    base, new = bench.split_blacklist(scale)
    saved = args.work / f"scale-{args.scale}m.after-full"
    bench._prefect_env(scale)
    from flows.sweep import gdpr_sweep
    from pipelines.registry.registry import Registry

    if args.inline:
        import flows.steps

        class Inline(futures.Executor):
            def submit(self, fn, /, *a, **k):  # type: ignore[no-untyped-def, override]
                f: futures.Future = futures.Future()
                try:
                    f.set_result(fn(*a, **k))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's .result()
                    f.set_exception(exc)
                return f

        flows.steps._executor = Inline  # type: ignore[assignment]
    if not (saved / "clean").exists():
        bench.reset_sweep_state(scale, base)
        gdpr_sweep.fn(str(scale.root / "gdpr-sweep.toml"))
        _copy_state(scale.root, saved)
    for _ in range(args.rounds):
        _restore(saved, scale.root)
        Registry(scale.root / "blacklist.db").import_optimizely({"items": new})
        prof = cProfile.Profile()
        t, c = time.perf_counter(), time.process_time()
        before = {k: bench._inodes(scale.root / "clean" / k) for k in ("profiles", "events")}
        if not args.plain:
            prof.enable()
        gdpr_sweep.fn(str(scale.root / "gdpr-sweep.toml"))
        prof.disable()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        after = {k: bench._inodes(scale.root / "clean" / k) for k in before}
        rewritten = {k: sorted(n for n, ino in after[k].items() if ino != before[k].get(n)) for k in before}
        (scale.root / "rewritten.json").write_text(json.dumps(rewritten))
        floor = {}
        for variant in ("scan_identity", "copy_affected"):
            t1, c1 = time.perf_counter(), time.process_time()
            bench.VARIANTS[variant](scale)
            floor[variant] = (time.perf_counter() - t1, time.process_time() - c1)
        fw, fc = sum(w for w, _ in floor.values()), sum(c for _, c in floor.values())
        print(f"nightly: {wall:.2f} s wall, {cpu:.2f} CPU-s; floor (identity scan + copy of the "
              f"{sum(map(len, rewritten.values()))} rewritten files): {fw:.2f} s wall, {fc:.2f} CPU-s; "
              f"ratio {wall / fw:.2f} wall, {cpu / fc:.2f} CPU", flush=True)
    if args.plain:
        return
    if args.dump:
        prof.dump_stats(args.dump)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats(args.sort).print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
