"""Every entrypoint in prefect.yaml imports and names a Prefect flow; schedules are valid crons."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml
from prefect import Flow

ROOT = Path(__file__).resolve().parents[2]


def test_every_entrypoint_is_a_flow():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert spec["deployments"], "no deployments"
    for deployment in spec["deployments"]:
        file, name = deployment["entrypoint"].split(":")
        module_spec = importlib.util.spec_from_file_location("entry", ROOT / file)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        assert isinstance(getattr(module, name), Flow)


def test_nightly_schedule():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    nightly = next(d for d in spec["deployments"] if d["name"] == "nightly")
    assert nightly["schedules"][0]["cron"] == "30 2 * * *" and nightly["schedules"][0]["active"]
