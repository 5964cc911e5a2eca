"""The real command on a wrong configuration: exit 2, one `gdpr-sweep: error:` line naming file, key and
expectation, no traceback, nothing touched (issue 14 "Configuration errors"); `gdpr-sweep config
check | schema`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.config.schema import SCHEMA_PATH

REPO = Path(__file__).resolve().parents[2]


def one_error_line(result) -> str:
    assert result.code == 2, result.err
    assert "Traceback" not in result.err and result.out == "", result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gdpr-sweep: error: "), result.err
    return lines[0]


@pytest.mark.parametrize("value, shown", [('"24h"', '"24h"'), ("-5", "-5"), ("true", "true")])
def test_a_mistyped_deadline_is_one_line_and_exit_2(tmp_path, run_cli, value, shown):
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(config.read_text().replace("[sweep]\n", f"[sweep]\ndeadline_hours = {value}\n"))
    line = one_error_line(run_cli("blacklist", "list"))
    assert f"{config}: [sweep] deadline_hours: expected a positive number of hours" in line
    assert line.endswith(f"got {shown}")
    assert not (tmp_path / "blacklist.db").exists()


def test_config_check_reports_the_datasets(tmp_path, run_cli):
    result = run_cli("config", "check")
    assert result.code == 0, result.err
    assert result.json["valid"] is True
    assert result.json["datasets"] == [{"name": "profiles", "kind": "profiles", "format": "parquet",
                                        "location": str(tmp_path / "clean/profiles")}]


def test_config_schema_is_the_committed_file(tmp_path, run_cli):
    result = run_cli("config", "schema")
    assert result.code == 0, result.err
    assert result.out == (REPO / SCHEMA_PATH).read_text(encoding="utf-8")
    written = tmp_path / "schema.json"
    assert run_cli("config", "schema", "--output", str(written)).code == 0
    assert json.loads(written.read_text()) == json.loads(result.out)
