from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

MINIMAL_CONFIG = """
[sweep]
work_dir = "work"
report_dir = "reports"
blacklist_db = "blacklist.db"

[[datasets]]
name = "profiles"
kind = "profiles"
path = "clean/profiles"
email = "Info.Email"
"""


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


@pytest.fixture
def run_cli(tmp_path):
    """Run the installed `gdpr-sweep` command in a fresh folder with a minimal configuration."""
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(MINIMAL_CONFIG)

    def run(*args: str, cwd: Path = tmp_path) -> Result:
        proc = subprocess.run([sys.executable, "-m", "gdpr_sweep", "--config", str(config), *args],
                              capture_output=True, text=True, cwd=cwd, timeout=120)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
