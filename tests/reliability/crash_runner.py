"""Fault injection for tests/reliability/test_crash.py, kept out of product code.

Run as `python crash_runner.py SPEC.json`. The parent imports everything once, then for each case
forks a child that wraps the OS-boundary functions the product uses (renames, links, unlinks,
symlinks, fsyncs, folder removal, file copies, Parquet row-group writes, SQLite commits) with a
counter and sends itself SIGKILL just before call number `kill_at` (or, with `pause_at` and
`pause_dir`, writes `pause_dir/paused` and waits there until `pause_dir/resume` exists). The child's job is what a real
night looks like: a blacklist write (as `gdpr-sweep blacklist add` does) and then a sweep, either the
pipeline steps without Prefect (`mode = "pipeline"`, fast) or the real Prefect flow (`mode = "flow"`,
against the API in PREFECT_API_URL). With `kill_at = 0` nothing is killed and the child reports how
many calls a full run makes. One JSON line per case on stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipelines.config.settings import load_settings  # noqa: E402
from pipelines.datasets import storage  # noqa: E402
from pipelines.registry.registry import Registry  # noqa: E402
from tests.helpers import sweep  # noqa: E402

CALLS = 0
KILL_AT = 0
PAUSE_AT = 0
PAUSE_DIR: Path | None = None


def _hit() -> None:
    global CALLS
    CALLS += 1
    if CALLS == KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)
    if CALLS == PAUSE_AT and PAUSE_DIR is not None:  # test_concurrency: hold the run here
        (PAUSE_DIR / "paused").write_text(str(os.getpid()))
        while not (PAUSE_DIR / "resume").exists():
            time.sleep(0.02)


def _wrap(owner, name: str) -> None:
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        _hit()
        return original(*args, **kwargs)

    setattr(owner, name, counted)


class CountingConnection(sqlite3.Connection):
    def execute(self, sql, *args):  # type: ignore[override]
        if sql.strip().upper().startswith("COMMIT"):
            _hit()
        return super().execute(sql, *args)

    def commit(self):  # type: ignore[override]
        _hit()
        return super().commit()


def install(kill_at: int, pause_at: int = 0, pause_dir: str | None = None) -> None:
    global KILL_AT, PAUSE_AT, PAUSE_DIR
    KILL_AT, PAUSE_AT = kill_at, pause_at
    PAUSE_DIR = Path(pause_dir) if pause_dir else None
    for name in ("replace", "rename", "link", "unlink", "symlink", "fsync"):
        _wrap(os, name)
    for name in ("rmtree", "copyfile"):
        _wrap(shutil, name)
    _wrap(pq.ParquetWriter, "write_table")
    connect = sqlite3.connect
    sqlite3.connect = lambda *a, **k: connect(*a, **{**k, "factory": CountingConnection})


def job(config: Path, mode: str) -> None:
    settings = load_settings(config)
    Registry(settings.blacklist_db).add(email="crash-concurrent@example.com", source="cli")
    if mode == "flow":
        from flows.sweep import gdpr_sweep

        gdpr_sweep(config=str(config))
        return
    with storage.run_lock(settings.work_dir):
        storage.remove_stale_temporaries(settings.report_dir)  # as the flow does
        snapshot = Registry(settings.blacklist_db).snapshot()
        run_id = f"run-{os.getpid()}"
        outcomes, verification = sweep(list(settings.datasets), snapshot.entries, run_id=run_id,
                                       version=snapshot.version)
        storage.write_json_atomic(settings.report_dir / run_id / "report.json", {
            "blacklist_version": snapshot.version, "verified": verification.ok,
            "datasets": {o.name: o.rows_removed for o in outcomes}})


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    if spec["mode"] == "flow":
        import flows.sweep  # noqa: F401  (import Prefect once, before forking)
    for case in spec["cases"]:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            code = 0
            try:
                install(case["kill_at"], case.get("pause_at", 0), case.get("pause_dir"))
                job(Path(case["config"]), spec["mode"])
            except BaseException as exc:  # reported to the parent, which decides
                os.write(write, f"error {type(exc).__name__}: {exc}".encode()[:2000])
                code = 1
            else:
                os.write(write, f"calls {CALLS}".encode())
            os._exit(code)
        os.close(write)
        message = os.read(read, 4096).decode()
        os.close(read)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        print(json.dumps({"config": case["config"], "kill_at": case["kill_at"], "killed": killed,
                          "message": message}), flush=True)


if __name__ == "__main__":
    main()
