"""The configuration file: every value type- and range-checked, unknown keys refused, one-line errors
naming file, key and expectation (issue 14 "Configuration errors", issue 15); the committed JSON Schema
up to date and in line with the loader. (Overlapping dataset folders, issue 13: tests/reliability.)"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from pipelines.config.schema import SCHEMA_PATH, config_schema, config_schema_text
from pipelines.config.settings import load_settings
from pipelines.core.errors import ConfigError
from tests.helpers import lake_config

REPO = Path(__file__).resolve().parents[2]


def _with(block: str, extra: str) -> str:
    """`block` (one TOML table) with the lines of `extra`, each replacing the table's line for its key."""
    for line in filter(None, extra.splitlines()):
        key = line.split("=", 1)[0].strip()
        block = "\n".join([*(old for old in block.splitlines() if old.split("=", 1)[0].strip() != key), line])
    return block


def write_config(root: Path, *, sweep: str = "", tables: str = "", events: str = "", profiles: str = "") -> Path:
    """The two-dataset test lake's configuration (tests/helpers.py) with lines set in `[sweep]` and in the
    profiles / events tables, and more `tables` after it."""
    sweep_table, profiles_table, events_table = lake_config().strip().split("\n\n")
    text = "\n\n".join([_with(sweep_table, sweep), _with(profiles_table, profiles), _with(events_table, events)])
    config = root / "gdpr-sweep.toml"
    config.write_text(text + "\n\n" + tables + "\n")
    return config


def refused(config: Path) -> str:
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    message = str(raised.value)
    assert raised.value.exit_code == 2
    assert "\n" not in message and message.startswith(f"{config}: "), message
    return message


# (where to put the line, the line, words the message must contain)
BAD_VALUES = {
    "hours-as-text": ("sweep", 'deadline_hours = "24h"', ["[sweep] deadline_hours", "number of hours", '"24h"']),
    "hours-negative": ("sweep", "deadline_hours = -5", ["[sweep] deadline_hours", "positive", "-5"]),
    "hours-boolean": ("sweep", "deadline_hours = true", ["[sweep] deadline_hours", "number of hours", "true"]),
    "hours-zero": ("sweep", "deadline_hours = 0", ["[sweep] deadline_hours", "positive"]),
    "hours-infinite": ("sweep", "deadline_hours = inf", ["[sweep] deadline_hours", "at most 720"]),
    "hours-nan": ("sweep", "deadline_hours = nan", ["[sweep] deadline_hours"]),
    "flag-as-text": ("sweep", 'delete_raw = "yes"', ["[sweep] delete_raw", "true or false", '"yes"']),
    "flag-as-number": ("sweep", "link_devices_through_events = 1", ["link_devices_through_events", "true or false"]),
    "memory-too-small": ("sweep", 'duckdb_memory_limit = "10MB"', ["duckdb_memory_limit", "256MB"]),
    "memory-as-number": ("sweep", "duckdb_memory_limit = 1024", ["duckdb_memory_limit", "'1GB'"]),
    "memory-nonsense": ("sweep", 'duckdb_memory_limit = "lots"', ["duckdb_memory_limit", "'1GB'"]),
    "runner-unknown": ("sweep", 'task_runner = "spark"', ["[sweep] task_runner", "'local', 'dask'", '"spark"']),
    "workers-zero": ("sweep", "dask_workers = 0", ["[sweep] dask_workers", "whole number from 1 to 256"]),
    "workers-fraction": ("sweep", "dask_workers = 2.5", ["[sweep] dask_workers", "whole number"]),
    "workers-text": ("sweep", 'dask_workers = "2"', ["[sweep] dask_workers", "whole number"]),
    "address-with-space": ("sweep", 'dask_address = "tcp://a b"', ["[sweep] dask_address", "without spaces"]),
    "path-as-number": ("sweep", "work_dir = 5", ["[sweep] work_dir", "path string", "5"]),
    "path-empty": ("sweep", 'report_dir = ""', ["[sweep] report_dir", "path string"]),
    "report-url-http": ("sweep", 'report_url = "http://x/y"', ["[sweep] report_url", "s3://bucket/prefix"]),
    "sweep-unknown-key": ("sweep", "deadline = 24", ["[sweep] deadline", "unknown key"]),
    "s3-unknown-key": ("tables", '[s3]\nbucket = "b"', ["[s3] bucket", "unknown key"]),
    "s3-endpoint-no-scheme": ("tables", '[s3]\nendpoint_url = "localhost:9000"', ["[s3] endpoint_url", "http(s)"]),
    "s3-region-blank": ("tables", '[s3]\nregion = " "', ["[s3] region", "non-empty string"]),
    "scan-schedule": ("tables", '[scan]\nschedule = "daily"', ["[scan] schedule", "'every_run', 'weekly', 'off'"]),
    "scan-roots-text": ("tables", '[scan]\nlake_roots = "data"', ["[scan] lake_roots", "array"]),
    "scan-unknown-key": ("tables", "[scan]\nevery = 1", ["[scan] every", "unknown key"]),
    "top-unknown-table": ("tables", "[sweeps]\nx = 1", ["sweeps", "unknown key"]),
    "dataset-unknown-key": ("events", 'emial = "Email"', ["datasets[1].emial (events)", "unknown key"]),
    "dataset-kind": ("events", 'kind = "clicks"', ["datasets[1].kind (events)", "'profiles', 'events'"]),
    "dataset-format": ("events", 'format = "csv"', ["datasets[1].format (events)", "'parquet', 'delta'"]),
    "dataset-name": ("events", 'name = "my events"', ["datasets[1].name", "letters, digits"]),
    "dataset-column-empty": ("events", 'scope = ""', ["datasets[1].scope (events)", "column name"]),
    "dataset-column-dots": ("events", 'email = "User..Email"', ["datasets[1].email (events)", "dotted path"]),
    "dataset-column-number": ("events", "user_id = 7", ["datasets[1].user_id (events)", "column name"]),
    "dataset-flag": ("profiles", 'delete_raw = "no"', ["datasets[0].delete_raw (profiles)", "true or false"]),
    "dataset-url-key": ("events", 'url = "s3://b/e"', ["datasets[1] (events)", "'url' is not a key"]),
    "dataset-s3-no-bucket": ("events", 'path = "s3:///events"', ["datasets[1] (events)", "s3://bucket/prefix"]),
    "dataset-commands-on-profiles": ("profiles", 'event_name = "Name"', ["datasets[0] (profiles)", "events datasets only"]),
}


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_a_bad_value_is_refused_in_one_line_naming_file_key_and_expectation(tmp_path, name):
    place, line, words = BAD_VALUES[name]
    message = refused(write_config(tmp_path, **{place: line}))
    for word in words:
        assert word in message, message
    assert "Traceback" not in message and "pydantic" not in message.lower(), message


@pytest.mark.parametrize("text, words", [
    ("[[datasets]]\nname = 5", ["datasets[0].name", "letters, digits", "got 5"]),
    ("sweep = 5\n[[datasets]]\nname = \"e\"", ["sweep", "a table", "got 5"]),
    ("[sweep]\n", ["datasets", "required key is missing"]),
    ("datasets = []\n", ["datasets", "at least one [[datasets]] table"]),
    ('[[datasets]]\nname = "e"\nkind = "events"\nemail = "Email"\n', ["datasets[0].path (e)", "required key"]),
])
def test_missing_and_misshapen_tables_are_refused(tmp_path, text, words):
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(text)
    message = refused(config)
    for word in words:
        assert word in message, message


def test_secrets_are_never_echoed(tmp_path):
    message = refused(write_config(tmp_path, tables='[s3]\nsecret_access_key = 31415926\naccess_key_id = "AK"'))
    assert "[s3] secret_access_key" in message and "31415926" not in message


def test_cross_key_rules_name_the_dataset(tmp_path):
    message = refused(write_config(tmp_path, events='email = ""'))
    assert "datasets[1].email (events)" in message
    (tmp_path / "b").mkdir()
    message = refused(write_config(tmp_path / "b", tables='[[datasets]]\nname = "events"\nkind = "events"\n'
                                                          'path = "clean/more"\nemail = "Email"\n'))
    assert "repeated: events" in message


@pytest.mark.parametrize("sweep, expected", [
    ("deadline_hours = 24", 24.0), ("deadline_hours = 0.5", 0.5), ("deadline_hours = 720", 720.0), ("", 24.0),
])
def test_valid_hours_are_read(tmp_path, sweep, expected):
    settings = load_settings(write_config(tmp_path, sweep=sweep))
    assert settings.deadline_hours == expected and isinstance(settings.deadline_hours, float)


def test_defaults_and_relative_paths_resolve_against_the_file(tmp_path):
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text('[[datasets]]\nname = "e"\nkind = "events"\npath = "clean/e"\nsource = "raw/e"\n'
                      'email = "Email"\n')
    settings = load_settings(config)
    assert settings.work_dir == tmp_path / "data/work" and settings.report_dir == tmp_path / "data/reports"
    assert settings.blacklist_db == tmp_path / "data/blacklist.db" and settings.base_dir == tmp_path
    assert (settings.deadline_hours, settings.dask_workers, settings.task_runner) == (24.0, 2, "local")
    assert (settings.datasets[0].path, settings.datasets[0].source) == (tmp_path / "clean/e", tmp_path / "raw/e")
    assert settings.scan.schedule == "weekly" and settings.s3.endpoint_url is None


def test_object_store_paths_keep_their_url(tmp_path):
    settings = load_settings(write_config(tmp_path, events='path = "s3://bucket/lake/events/"\n'
                                                         'source = "s3://bucket/raw/events"'))
    events = settings.dataset("events")
    assert (events.url, events.source_url, events.source) == ("s3://bucket/lake/events", "s3://bucket/raw/events",
                                                              None)
    assert events.location == "s3://bucket/lake/events"


def test_the_committed_schema_is_up_to_date():
    committed = (REPO / SCHEMA_PATH).read_text(encoding="utf-8")
    assert committed == config_schema_text(), "run: gdpr-sweep config schema -o docs/config.schema.json"


# What the schema does not say (the loader checks it): NaN compares false with every bound; sizes are
# text; rules across keys; the shape of an object-store URL given as a path.
SCHEMA_BLIND = {"hours-nan", "memory-too-small", "dataset-commands-on-profiles", "dataset-s3-no-bucket"}


def test_the_schema_accepts_the_repository_configuration_and_refuses_bad_values(tmp_path):
    """Editors validating with the schema flag what the loader refuses (values of one key)."""
    validator = jsonschema.Draft202012Validator(config_schema())
    validator.check_schema(config_schema())
    assert list(validator.iter_errors(tomllib.loads((REPO / "gdpr-sweep.toml").read_text()))) == []
    assert list(validator.iter_errors(tomllib.loads(write_config(tmp_path).read_text()))) == []
    accepted = []
    for name, (place, line, _) in sorted(BAD_VALUES.items()):
        text = write_config(tmp_path, **{place: line}).read_text()
        if not list(validator.iter_errors(tomllib.loads(text))):
            accepted.append(name)
    assert set(accepted) == SCHEMA_BLIND


def test_the_schema_documents_every_key():
    schema = config_schema()
    for table in schema["$defs"].values():
        for key, spec in table["properties"].items():
            assert spec.get("description"), key
    assert json.loads(config_schema_text()) == schema
