"""Benchmark: gdpr-sweep's full and incremental sweeps against plain tools, in one run.

    .venv/bin/python bench/bench_sweep.py                      # 20M events, 1M profiles, 365 daily files
    .venv/bin/python bench/bench_sweep.py --scales 4,20        # also 4M events (linear growth, 5x)
    .venv/bin/python bench/bench_sweep.py --scales 20,100      # also 100M events (full sweep and floor)
    .venv/bin/python bench/bench_sweep.py --shape large         # the same rows in 16 large files (DuckDB)

Lake shapes (`--shape`): `daily` (default), the generator's 365 daily event files; `large`, the same
events rewritten by DuckDB into 16 large files and the profiles into 4, swept with
`link_devices_through_events = false` (a lake the project did not generate, as in issue 19).

Per scale (events in millions; profiles = events / 20; `pipelines.sample.generate`, seed 7):

- `copy`            (b) the floor: DuckDB `COPY` of every file, no filter (zstd, like the input);
- `duckdb_antijoin` (c) a hand-written DuckDB `COPY (... ANTI JOIN ...)`;
- `polars`          (d) Polars `scan_parquet` + anti joins + `sink_parquet` (streaming);
- `pyarrow`         (e) pyarrow, one file at a time: read, `is_in` mask, filter, write;
- `sweep_full`      (a) gdpr-sweep's Prefect flow into an empty cleaned dataset, report included;
  Prefect's fixed start-up (import, temporary API server, first flow run) is measured separately;
- `sweep_direct`    the same flow's function without Prefect's engine (what `gdpr-sweep sweep` runs
  with no server, decision 0291): `sweep_full` minus this is Prefect's in-flow overhead;
- `sweep_cli`       `gdpr-sweep sweep` start to exit (a new process, no `PREFECT_API_URL`);
- `sweep_incremental` the same flow the next night, after 10 more blacklist entries;
- `scan_identity` + `copy_affected`: a DuckDB scan of the identity columns of every file plus a
  plain copy of just the files the incremental sweep rewrote (its floor);
- `sweep_steps`     the flow's steps without Prefect, timed one by one (where the time goes).

The plain tools get the keys to remove precomputed (normalised emails, user ids, linked devices;
scopes ignored, so they remove a superset); gdpr-sweep applies §3 in full. Every variant runs in
its own process; peak memory is that process's maximum resident set (`ru_maxrss`). Results go to
`<work>/results.json` and a Markdown section printed at the end (pasted into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import prefect_env  # noqa: E402
from tests.support.lake import two_datasets, write_lake_config  # noqa: E402

NEW_ENTRIES = 10
SEED = 7
DAYS = 365


# ---------------------------------------------------------------------------------------------
# Layout of one scale's working folder.


class Scale:
    def __init__(self, work: Path, millions: int, shape: str = "daily"):
        self.millions = millions
        self.shape = shape
        self.events = millions * 1_000_000
        self.profiles = self.events // 20
        suffix = "" if shape == "daily" else f"-{shape}"
        self.root = work / f"scale-{millions}m{suffix}"
        self.generated = work / f"data-{millions}m"  # the generator's daily files (every shape starts there)
        self.data = work / f"data-{millions}m{suffix}"

    @property
    def raw_events(self) -> Path:
        return self.data / "events"

    @property
    def raw_profiles(self) -> Path:
        return self.data / "profiles"

    @property
    def landing(self) -> Path:
        """Where the sweep's raw snapshots land: hard links to the generated files, so the sweep can
        delete what it consumed (`delete_raw = true`, the 24-hour rule) and the data stays."""
        return self.root / "raw"

    def files(self, folder: Path) -> list[str]:
        return sorted(str(p) for p in folder.glob("*.parquet"))


def ensure_data(scale: Scale, entries: int) -> dict[str, Any]:
    from pipelines.sample.generate import generate

    done = scale.generated / "_bench_generated.json"
    if done.exists():
        info = json.loads(done.read_text())
    else:
        t = time.perf_counter()
        generate(scale.generated, profiles=scale.profiles, events=scale.events, days=DAYS, seed=SEED,
                 blacklist=entries + NEW_ENTRIES)
        info = {"events": scale.events, "profiles": scale.profiles, "days": DAYS, "seed": SEED,
                "entries": entries + NEW_ENTRIES, "generate_seconds": round(time.perf_counter() - t, 1)}
        done.write_text(json.dumps(info))
    if scale.shape == "large":
        info = {**info, **reshape_large(scale)}
    info["shape"] = scale.shape
    return info


def reshape_large(scale: Scale) -> dict[str, Any]:
    """The generated rows rewritten by DuckDB into 16 event files and 4 profile files (zstd), once."""
    done = scale.data / "_bench_reshaped.json"
    if done.exists():
        return json.loads(done.read_text())
    con = _duckdb()
    for kind, parts in (("events", 16), ("profiles", 4)):
        files = sorted(str(p) for p in (scale.generated / kind).glob("*.parquet"))
        out = scale.data / kind
        out.mkdir(parents=True, exist_ok=True)
        parts = min(parts, len(files))  # a small scale has a single profiles file
        for i in range(parts):
            chunk = files[i * len(files) // parts:(i + 1) * len(files) // parts]
            con.execute(f"COPY (SELECT * FROM read_parquet($f)) TO '{out / f'part-{i:02d}.parquet'}' "
                        "(FORMAT parquet, COMPRESSION zstd)", {"f": chunk})
    shutil.copyfile(scale.generated / "blacklist.json", scale.data / "blacklist.json")
    info = {"files": {k: len(list((scale.data / k).glob("*.parquet"))) for k in ("events", "profiles")}}
    done.write_text(json.dumps(info))
    return info


def split_blacklist(scale: Scale) -> tuple[list[dict], list[dict]]:
    """The generated sample blacklist: every len/10-th item is a 'new' entry for the nightly run."""
    items = json.loads((scale.data / "blacklist.json").read_text())["items"]
    step = len(items) // NEW_ENTRIES
    new_idx = {i * step for i in range(NEW_ENTRIES)}
    return [it for i, it in enumerate(items) if i not in new_idx], [items[i] for i in sorted(new_idx)]


def write_config(scale: Scale) -> Path:
    root = scale.root
    sweep = {"work_dir": root / "work", "report_dir": root / "reports", "blacklist_db": root / "blacklist.db",
             "allow_paths_outside_base": True, "link_devices_through_events": scale.shape == "daily",
             "delete_raw": True, "deadline_hours": 24, "duckdb_memory_limit": "1GB"}
    scan = {"schedule": os.environ.get("GDPR_SWEEP_BENCH_SCAN", "weekly")}  # the residual scan; weekly: the first run scans
    return write_lake_config(root, *two_datasets(scale.landing, root / "clean"), sweep=sweep, scan=scan)


def reset_sweep_state(scale: Scale, items: list[dict]) -> None:
    """An empty cleaned lake and a registry holding `items` (Optimizely import)."""
    from pipelines.registry.registry import Registry

    for name in ("clean", "reports", "work", "raw"):
        shutil.rmtree(scale.root / name, ignore_errors=True)
    for kind, folder in (("profiles", scale.raw_profiles), ("events", scale.raw_events)):
        (scale.landing / kind).mkdir(parents=True)
        for f in folder.glob("*.parquet"):
            os.link(f, scale.landing / kind / f.name)
    for suffix in ("", "-wal", "-shm"):
        (scale.root / f"blacklist.db{suffix}").unlink(missing_ok=True)
    scale.root.mkdir(parents=True, exist_ok=True)
    Registry(scale.root / "blacklist.db").import_optimizely({"items": items})


def write_keys(scale: Scale) -> None:
    """Keys the plain tools remove: normalised emails and user ids of every entry, and the devices
    linked to them (profile DeviceIds, DeviceId of matching events); scopes are ignored."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    base, new = split_blacklist(scale)
    items = base + new
    keys = scale.root / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    emails = pa.table({"email": [i["Email"].strip().lower() for i in items if i.get("Email")]})
    users = pa.table({"user_id": [i["UserId"] for i in items if i.get("UserId")]})
    con = duckdb.connect()
    con.register("emails", emails)
    con.register("users", users)
    devices = con.sql("""
        SELECT DISTINCT d AS device FROM (
            SELECT unnest(p.DeviceIds) AS d FROM read_parquet($p) p
            WHERE lower(trim(p.Info.Email)) IN (SELECT email FROM emails) OR p.UserId IN (SELECT user_id FROM users)
            UNION ALL
            SELECT e.DeviceId FROM read_parquet($e) e
            WHERE lower(trim(e.User.Email)) IN (SELECT email FROM emails) OR e.User.UserId IN (SELECT user_id FROM users)
        ) WHERE d IS NOT NULL""", params={"p": scale.files(scale.raw_profiles), "e": scale.files(scale.raw_events)}
    ).to_arrow_table()
    for name, table in (("emails", emails), ("user_ids", users), ("devices", devices)):
        pq.write_table(table, keys / f"{name}.parquet")


# ---------------------------------------------------------------------------------------------
# Variants: each runs in a child process (`--variant NAME --scale N`) and prints one JSON line.


def _fresh(out: Path) -> Path:
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _duckdb():
    import duckdb

    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute("SET memory_limit = '1GB'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    return con


def v_copy(scale: Scale) -> dict[str, Any]:
    con = _duckdb()
    for kind, folder in (("profiles", scale.raw_profiles), ("events", scale.raw_events)):
        out = _fresh(scale.root / "out" / "copy" / kind)
        con.execute(f"COPY (SELECT * FROM read_parquet($f)) TO '{out}' "
                    "(FORMAT parquet, COMPRESSION zstd, PER_THREAD_OUTPUT true)", {"f": scale.files(folder)})
    return {}


def v_duckdb_antijoin(scale: Scale) -> dict[str, Any]:
    con = _duckdb()
    keys = scale.root / "keys"
    for name in ("emails", "user_ids", "devices"):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{keys / (name + '.parquet')}')")
    out = _fresh(scale.root / "out" / "antijoin")
    out.mkdir()
    con.execute(f"""COPY (
        SELECT t.* FROM read_parquet($f) t
        ANTI JOIN emails k ON lower(trim(t.Info.Email)) = k.email
        ANTI JOIN user_ids u ON t.UserId = u.user_id
    ) TO '{out / 'profiles'}' (FORMAT parquet, COMPRESSION zstd, PER_THREAD_OUTPUT true)""",
                {"f": scale.files(scale.raw_profiles)})
    con.execute(f"""COPY (
        SELECT t.* FROM read_parquet($f) t
        ANTI JOIN emails k ON lower(trim(t.User.Email)) = k.email
        ANTI JOIN user_ids u ON t.User.UserId = u.user_id
        ANTI JOIN devices d ON t.DeviceId = d.device
    ) TO '{out / 'events'}' (FORMAT parquet, COMPRESSION zstd, PER_THREAD_OUTPUT true)""",
                {"f": scale.files(scale.raw_events)})
    return {}


def v_polars(scale: Scale) -> dict[str, Any]:
    import polars as pl

    keys = scale.root / "keys"
    emails = pl.read_parquet(keys / "emails.parquet")
    users = pl.read_parquet(keys / "user_ids.parquet")
    devices = pl.read_parquet(keys / "devices.parquet")
    out = _fresh(scale.root / "out" / "polars")
    out.mkdir(parents=True)

    def norm(expr: pl.Expr) -> pl.Expr:
        return expr.str.strip_chars().str.to_lowercase()

    (pl.scan_parquet(scale.files(scale.raw_profiles))
     .with_columns(_e=norm(pl.col("Info").struct.field("Email")))
     .join(emails.lazy(), left_on="_e", right_on="email", how="anti")
     .join(users.lazy(), left_on="UserId", right_on="user_id", how="anti")
     .drop("_e")
     .sink_parquet(out / "profiles.parquet", compression="zstd"))
    (pl.scan_parquet(scale.files(scale.raw_events))
     .with_columns(_e=norm(pl.col("User").struct.field("Email")), _u=pl.col("User").struct.field("UserId"))
     .join(emails.lazy(), left_on="_e", right_on="email", how="anti")
     .join(users.lazy(), left_on="_u", right_on="user_id", how="anti")
     .join(devices.lazy(), left_on="DeviceId", right_on="device", how="anti")
     .drop("_e", "_u")
     .sink_parquet(out / "events.parquet", compression="zstd"))
    return {}


def v_pyarrow(scale: Scale) -> dict[str, Any]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    keys = scale.root / "keys"
    emails = pq.read_table(keys / "emails.parquet")["email"].combine_chunks()
    users = pq.read_table(keys / "user_ids.parquet")["user_id"].combine_chunks()
    devices = pq.read_table(keys / "devices.parquet")["device"].combine_chunks()
    out = _fresh(scale.root / "out" / "pyarrow")
    for kind, folder in (("profiles", scale.raw_profiles), ("events", scale.raw_events)):
        (out / kind).mkdir(parents=True)
        for f in scale.files(folder):
            t = pq.read_table(f)
            if kind == "profiles":
                email, user, device = pc.struct_field(t["Info"], "Email"), t["UserId"], None
            else:
                email, user, device = pc.struct_field(t["User"], "Email"), pc.struct_field(t["User"], "UserId"), \
                    t["DeviceId"]
            drop = pc.or_(pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(email)), value_set=emails),
                          pc.is_in(user, value_set=users))
            if device is not None:
                drop = pc.or_(drop, pc.is_in(device, value_set=devices))
            kept = t.filter(pc.invert(pc.fill_null(drop, False)))
            pq.write_table(kept, out / kind / Path(f).name, compression="zstd")
    return {}


def _prefect_env(scale: Scale) -> None:
    prefect_env.configure_process(scale.root / "prefect-home", override=True, PREFECT_LOGGING_LEVEL="WARNING",
                                  PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")


def _inodes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in folder.glob("*.parquet")} if folder.exists() else {}


def _flow(scale: Scale) -> dict[str, Any]:
    """Run the real flow after Prefect's fixed start-up; return both times and what was rewritten."""
    _prefect_env(scale)
    t0 = time.perf_counter()
    from prefect import flow

    @flow(name="bench-warm-up")
    def warm_up() -> int:
        return 1

    warm_up()
    t1, c1, s1 = time.perf_counter(), _cpu(), _cpu_children()
    from flows.sweep import gdpr_sweep

    kinds = {"profiles": scale.landing / "profiles", "events": scale.landing / "events"}
    before = {k: _inodes(scale.root / "clean" / k) for k in kinds}
    report_path = gdpr_sweep(str(scale.root / "gdpr-sweep.toml"))
    t2, c2, s2 = time.perf_counter(), _cpu(), _cpu_children()
    after = {k: _inodes(scale.root / "clean" / k) for k in kinds}
    raw = {"profiles": _inodes(scale.raw_profiles), "events": _inodes(scale.raw_events)}
    # Rewritten: neither the previous version's file nor the raw file itself (both are hard links).
    rewritten = {k: sorted(n for n, ino in after[k].items() if ino not in (before[k].get(n), raw[k].get(n)))
                 for k in kinds}
    (scale.root / "rewritten.json").write_text(json.dumps(rewritten))
    report = json.loads(Path(report_path).read_text())
    removed = {d["name"]: d.get("rows_removed") for d in report.get("datasets", [])}
    return {"seconds": t2 - t1, "cpu_seconds": c2 - c1, "prefect_server_cpu_seconds": s2 - s1, "prefect_startup_seconds": t1 - t0, "files_rewritten":
            {k: len(v) for k, v in rewritten.items()}, "rows_removed": removed}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _cpu_children() -> float:
    """CPU seconds of this process's live children (Prefect's temporary API server)."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def v_sweep_full(scale: Scale) -> dict[str, Any]:
    return _flow(scale)


def v_sweep_incremental(scale: Scale) -> dict[str, Any]:
    return _flow(scale)


def v_sweep_direct(scale: Scale) -> dict[str, Any]:
    """The flow's function without Prefect's engine (decision 0291), after the same imports as `_flow`."""
    _prefect_env(scale)
    t0 = time.perf_counter()
    from flows.sweep import gdpr_sweep

    t1, c1 = time.perf_counter(), _cpu()
    report_path = gdpr_sweep.fn(str(scale.root / "gdpr-sweep.toml"))
    t2, c2 = time.perf_counter(), _cpu()
    report = json.loads(Path(report_path).read_text())
    return {"seconds": t2 - t1, "cpu_seconds": c2 - c1, "import_seconds": t1 - t0,
            "rows_removed": {d["name"]: d.get("rows_removed") for d in report.get("datasets", [])}}


def v_sweep_cli(scale: Scale) -> dict[str, Any]:
    """`gdpr-sweep sweep` from start to exit, in its own process, no Prefect server configured."""
    from tests.support.procs import run_cli

    env = prefect_env.child_env(None, drop=("PREFECT_",), PREFECT_HOME=str(scale.root / "prefect-home"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = run_cli(scale.root / "gdpr-sweep.toml", "sweep", env=env, cwd=ROOT, timeout=3600)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"gdpr-sweep sweep failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return {"seconds": seconds, "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime
                                                     - before.ru_stime, 2), "cli_peak_rss_mb": round(after.ru_maxrss / 1024)}


def v_scan_identity(scale: Scale) -> dict[str, Any]:
    con = _duckdb()
    con.execute("""SELECT count(lower(trim(t.Info.Email))), count(t.UserId), count(t.DeviceIds), count(t.Scope)
                   FROM read_parquet($f) t""", {"f": scale.files(scale.raw_profiles)}).fetchall()
    con.execute("""SELECT count(lower(trim(t.User.Email))), count(t.User.UserId), count(t.DeviceId),
                   count(t.Scope) FROM read_parquet($f) t""", {"f": scale.files(scale.raw_events)}).fetchall()
    return {}


def v_copy_affected(scale: Scale) -> dict[str, Any]:
    rewritten = json.loads((scale.root / "rewritten.json").read_text())
    con = _duckdb()
    for kind, folder in (("profiles", scale.raw_profiles), ("events", scale.raw_events)):
        files = [str(folder / name) for name in rewritten[kind]]
        if files:
            out = _fresh(scale.root / "out" / "copy_affected" / kind)
            con.execute(f"COPY (SELECT * FROM read_parquet($f)) TO '{out}' "
                        "(FORMAT parquet, COMPRESSION zstd, PER_THREAD_OUTPUT true)", {"f": files})
    return {"files": {k: len(v) for k, v in rewritten.items()}}


def v_sweep_steps(scale: Scale) -> dict[str, Any]:
    """The flow's steps without Prefect and without the report, each timed (full sweep, fresh lake)."""
    from pipelines.config.settings import load_settings
    from pipelines.core.match import connect, entries_table, find_matches, with_versions
    from pipelines.datasets.sweep import (
        match_fingerprint,
        plan_dataset,
        publish_version,
        verify_versions,
        write_version,
    )
    from pipelines.registry.registry import Registry

    settings = load_settings(scale.root / "gdpr-sweep.toml")
    steps: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        steps[name] = round(now - t, 2)
        t = now

    snap = Registry(settings.blacklist_db).snapshot()
    entries = with_versions(entries_table(snap.entries), snap.added)
    link = settings.link_devices_through_events
    fingerprint = match_fingerprint(settings.datasets, link)
    lap("load_blacklist")
    plans = [plan_dataset(c, fingerprint) for c in settings.datasets]
    lap("plan")
    with connect() as con:
        matches = find_matches(con, entries, [p.as_input(snap.version) for p in plans], link)
        lap("match")
        outcomes = [write_version(p, matches.datasets[p.config.name], "steps", snap.version, fingerprint)
                    for p in plans]
        lap("write")
        verification = verify_versions(con, entries_table(snap.entries), outcomes, settings.datasets, matches, link)
        lap("verify")
    assert verification.ok
    for c, o in zip(settings.datasets, outcomes, strict=True):
        publish_version(c, o)
    lap("publish")
    return {"seconds": sum(steps.values()), "steps": steps,
            "files_rewritten": sum(f.rewritten for o in outcomes for f in o.files)}


VARIANTS = {name[2:]: fn for name, fn in globals().items() if name.startswith("v_")}


def child(variant: str, scale: Scale) -> None:
    t, cpu = time.perf_counter(), _cpu()
    extra = VARIANTS[variant](scale)
    seconds = extra.pop("seconds", time.perf_counter() - t)
    extra.setdefault("cpu_seconds", round(_cpu() - cpu, 2))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"variant": variant, "seconds": round(seconds, 2),
                                  "peak_rss_mb": round(peak_mb), **extra}), flush=True)


def run_variant(variant: str, scale: Scale, log) -> dict[str, Any]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--variant", variant, "--scale", str(scale.millions),
                           "--shape", scale.shape, "--work", str(scale.root.parent)],
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    log.write(f"--- {variant} @ {scale.millions}M (exit {proc.returncode}, {wall:.1f} s)\n{proc.stderr[-4000:]}\n")
    log.flush()
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
            result["process_seconds"] = round(wall, 2)
            return result
    raise SystemExit(f"{variant} failed (exit {proc.returncode}); see the log: {proc.stderr[-2000:]}")


# ---------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import duckdb
    import polars
    import prefect
    import pyarrow

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    mem = next(int(line.split()[1]) // 1024 // 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem, "python": platform.python_version(),
            "os": platform.platform(), "duckdb": duckdb.__version__, "polars": polars.__version__,
            "pyarrow": pyarrow.__version__, "prefect": prefect.__version__, "git_commit": commit.strip(),
            "load_average_at_start": os.getloadavg()}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (the lower middle of an even count), with every run's times."""
    chosen = dict(sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2])
    chosen["runs_seconds"] = [r["seconds"] for r in runs]
    chosen["runs_cpu_seconds"] = [r["cpu_seconds"] for r in runs]
    return chosen


def run_scale(scale: Scale, entries: int, log, full_only: bool, repeat: int) -> dict[str, Any]:
    """Every variant `repeat` times, round by round (each round runs them all in the same order, so
    a slow spell of a shared machine hits every variant alike); each keeps its median run."""
    info = ensure_data(scale, entries)
    scale.root.mkdir(parents=True, exist_ok=True)
    write_config(scale)
    base, new = split_blacklist(scale)
    write_keys(scale)
    sizes = {k: sum(os.path.getsize(f) for f in scale.files(d)) for k, d in
             (("profiles", scale.raw_profiles), ("events", scale.raw_events))}
    runs: dict[str, list[dict[str, Any]]] = {}

    def run(variant: str) -> None:
        result = run_variant(variant, scale, log)
        runs.setdefault(variant, []).append(result)
        shutil.rmtree(scale.root / "out", ignore_errors=True)
        print(f"{scale.millions}M {variant}: {result}", flush=True)

    order = ["copy", "sweep_full"] if full_only else ["copy", "duckdb_antijoin", "polars", "pyarrow", "sweep_full",
                                                       "sweep_direct", "sweep_cli"]
    for _ in range(repeat):
        for variant in order:
            if variant.startswith("sweep_"):
                reset_sweep_state(scale, base)
            run(variant)
        if not full_only:
            from pipelines.registry.registry import Registry

            Registry(scale.root / "blacklist.db").import_optimizely({"items": new})
            for variant in ("sweep_incremental", "scan_identity", "copy_affected"):
                run(variant)
    if not full_only:
        reset_sweep_state(scale, base)
        run("sweep_steps")
    results: dict[str, Any] = {"data": {**info, "bytes": sizes, "entries_full": len(base), "entries_new": len(new)},
                               "repeat": repeat, "variants": {k: median_run(v) for k, v in runs.items()}}
    shutil.rmtree(scale.root / "clean", ignore_errors=True)
    shutil.rmtree(scale.root / "clean", ignore_errors=True)
    for name in (".profiles.versions", ".events.versions"):
        shutil.rmtree(scale.root / "clean" / name, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gdpr-sweep-bench"),
                        help="working folder for data and outputs (needs ~3 GB per 20M events)")
    parser.add_argument("--scales", default="20", help="comma-separated millions of events; the largest "
                        "scale gets every variant, the others the floor and the full sweep (default 20)")
    parser.add_argument("--entries", type=int, default=10_000, help="blacklist entries in the full sweep")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every variant at the main scale; each "
                        "variant keeps its median run (default 3); other scales run once")
    parser.add_argument("--shape", choices=("daily", "large"), default="daily",
                        help="daily: 365 daily event files (default); large: the same rows in 16 large files")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        child(args.variant, Scale(args.work, args.scale, args.shape))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    scales = sorted({int(s) for s in args.scales.split(",")})
    main_scale = 20 if 20 in scales else scales[-1]
    out: dict[str, Any] = {"command": " ".join([".venv/bin/python", "bench/bench_sweep.py", *sys.argv[1:]]),
                           "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "scales": {}}
    results = "results.json" if args.shape == "daily" else f"results-{args.shape}.json"
    out["shape"] = args.shape
    with open(args.work / "bench.log", "a") as log:
        for millions in [main_scale] + [s for s in scales if s != main_scale]:
            out["scales"][str(millions)] = run_scale(Scale(args.work, millions, args.shape), args.entries, log,
                                                     full_only=millions != main_scale,
                                                     repeat=args.repeat if millions == main_scale else 1)
            (args.work / results).write_text(json.dumps(out, indent=2))
    out["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out["machine"]["load_average_at_end"] = os.getloadavg()
    (args.work / results).write_text(json.dumps(out, indent=2))
    from bench.report_sweep import markdown

    print(markdown(out))


if __name__ == "__main__":
    main()
