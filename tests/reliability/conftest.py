"""A full demo run through the real `gdpr-sweep` command, shared by the privacy and file-mode tests.

The command runs in a subprocess with the typical umask 022, against the session's Prefect harness
(its API URL), so its logs and artifacts land where the tests can read them back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

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


def harness_api_url() -> str:
    from prefect.settings import get_current_settings

    return str(get_current_settings().api.url)


def cli_env(api_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "GDPR_SWEEP_CONFIG")}
    env.update({"PREFECT_API_URL": api_url, "PREFECT_LOGGING_LEVEL": "DEBUG",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", **extra})
    return env


def run_gdpr_sweep(config: Path, *args: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gdpr_sweep", "--config", str(config), *args],
                          capture_output=True, text=True, env=env, cwd=config.parent, timeout=timeout,
                          preexec_fn=lambda: os.umask(0o022))


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
