"""A full demo run through the real `gdpr-sweep` command, shared by the privacy and file-mode tests.

The command runs in a subprocess with the typical umask 022, against the session's Prefect harness
(its API URL), so its logs and artifacts land where the tests can read them back.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.prefect_env import child_env, current_api_url
from tests.support.procs import run_cli

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DemoRun:
    root: Path
    config: Path
    stdout: str
    stderr: str

    @property
    def reference(self) -> Path:
        """The test's own copy of the demo's sample data (the demo deletes the raw snapshots it consumed)."""
        return self.root / "reference"


DEMO_SIZE = {"events": 3000, "profiles": 200}


harness_api_url = current_api_url


def cli_env(api_url: str, **extra: str) -> dict[str, str]:
    """A child's environment against the harness's API, Prefect logging at DEBUG (the privacy tests read it)."""
    return child_env(api_url, drop=("PREFECT_HOME",), **{"PREFECT_LOGGING_LEVEL": "DEBUG", **extra})


def run_gdpr_sweep(config: Path, *args: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return run_cli(config, *args, env=env, timeout=timeout, umask=0o022)


@pytest.fixture(scope="session")
def demo_run(prefect_harness, tmp_path_factory) -> DemoRun:
    root = tmp_path_factory.mktemp("demo-run")
    config = root / "gdpr-sweep.toml"
    shutil.copyfile(REPO / "gdpr-sweep.toml", config)
    env = cli_env(harness_api_url())
    outs, errs = [], []
    from pipelines.sample.generate import generate

    generate(root / "reference", **DEMO_SIZE)  # the same seed and size as the demo's: the same rows
    demo = ("demo", "--events", str(DEMO_SIZE["events"]), "--profiles", str(DEMO_SIZE["profiles"]))
    for args in (demo, ("sweep",)):
        proc = run_gdpr_sweep(config, *args, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs.append(proc.stdout)
        errs.append(proc.stderr)
    return DemoRun(root, config, "\n".join(outs), "\n".join(errs))
