from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.lake import dataset, lake_toml
from tests.support.procs import run_cli as run_gdpr_sweep

MINIMAL_CONFIG = lake_toml(dataset("profiles", "profiles", email="Info.Email"))


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
        proc = run_gdpr_sweep(config, *args, cwd=cwd, timeout=120)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
