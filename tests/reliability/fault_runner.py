"""Fault injection for tests/reliability/test_integrity.py, kept out of product code (as crash_runner.py).

Run as `python fault_runner.py SPEC.json`: it installs the spec's hooks and faults in this process,
then runs the real `gdpr-sweep` command line (`gdpr_sweep.cli.main`) with the spec's `argv`, so the
test sees exactly what a user sees: stdout, stderr, the exit code.

- `hooks`: `{"when": "before" | "after", "step": "start_version" | "publish", "dataset": NAME,
  "action": "move_over" | "copy_over" | "delete" | "kill", "args": [...]}` runs the action once, just before or
  just after the flow's call of `pipelines.datasets.scaleout.<step>` for that dataset. `start_version` comes
  after planning and matching, before the new version is written; `publish` switches the dataset,
  and the run deletes its consumed raw files right after it returns. `move_over SRC DST` replaces
  DST by rename (a new inode, as `mv` does); `copy_over SRC DST` writes SRC's bytes into DST in
  place (as `cp` does); `delete PATH`; `kill` sends the process SIGKILL (a crash between steps).
- `faults`: `{"call": "os.copy_file_range" | "ParquetWriter.write_table" | "os.unlink" | ...,
  "errno": 28, "match": TEXT}` makes that OS-boundary function raise OSError(errno) on every call
  whose arguments mention TEXT (any call when TEXT is empty), as a full disk or a denied permission
  would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pipelines.datasets.scaleout  # noqa: E402


def _action(name: str, args: list[str]) -> None:
    if name == "move_over":
        tmp = Path(args[1]).with_name(".incoming.tmp")
        shutil.copyfile(args[0], tmp)
        os.replace(tmp, args[1])
    elif name == "copy_over":
        with open(args[0], "rb") as src, open(args[1], "r+b") as dst:
            dst.truncate(0)
            shutil.copyfileobj(src, dst)
    elif name == "delete":
        os.unlink(args[0])
    elif name == "kill":  # a crash between two steps: no clean-up, no exception handler runs
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        raise ValueError(name)


def _hook(spec: dict) -> None:
    original = getattr(pipelines.datasets.scaleout, spec["step"])
    done = []

    def hooked(*args, **kwargs):
        mine = not done and args[1].config.name == spec["dataset"]
        if mine and spec["when"] == "before":
            done.append(1)
            _action(spec["action"], spec["args"])
        result = original(*args, **kwargs)
        if mine and spec["when"] == "after":
            done.append(1)
            _action(spec["action"], spec["args"])
        return result

    setattr(pipelines.datasets.scaleout, spec["step"], hooked)


def _fault(spec: dict) -> None:
    owner_name, name = spec["call"].rsplit(".", 1)
    owner = {"os": os, "ParquetWriter": pq.ParquetWriter, "shutil": shutil}[owner_name]
    original = getattr(owner, name)
    code, match = int(spec["errno"]), spec.get("match", "")

    def failing(*args, **kwargs):
        mentioned = " ".join(str(a) for a in args if isinstance(a, (str, os.PathLike)))
        if owner is pq.ParquetWriter:
            mentioned = str(getattr(args[0], "where", ""))
        if match in mentioned:
            raise OSError(code, os.strerror(code))
        return original(*args, **kwargs)

    setattr(owner, name, failing)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    for hook in spec.get("hooks", []):
        _hook(hook)
    for fault in spec.get("faults", []):
        _fault(fault)
    from gdpr_sweep.cli import main as cli_main

    sys.argv = ["gdpr-sweep", *spec["argv"]]
    cli_main()


if __name__ == "__main__":
    main()
