"""`Blacklisted` / `Whitelisted` events inside an events snapshot, interleaved with CLI and API changes:
for one identity the latest action by timestamp wins, whichever channel it came through."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from pipelines.config.settings import load_settings
from pipelines.core.errors import InputError, SchemaError
from pipelines.operations.commands import read_commands
from pipelines.registry.registry import Registry
from tests.helpers import EVENT_SCHEMA, events_config, make_event, read_dataset, write
from tests.support.lake import events, lake_toml

# "Hour h of the day" of these tests: within the last 14 hours, so no entry is past the 24-hour deadline.
DAY = (datetime.now(UTC) - timedelta(hours=14)).replace(minute=0, second=0, microsecond=0)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


def iso(hour: int, minute: int = 0) -> str:
    return at(hour, minute).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def command(name, hour, minute=0, **identity):
    return make_event(EventType=name, EventTime=at(hour, minute), **identity)


# Rows deliberately out of time order: the registry orders them by timestamp.
SNAPSHOT = [
    command("Blacklisted", 9, user_id="u-1"),                   # loses to the CLI whitelist at 10:00
    command("Blacklisted", 11, user_id="u-2"),                  # beats the CLI whitelist at 10:00
    command("Blacklisted", 12, email="Lead@Example.com", scope="Shop"),  # beats the API whitelist at 08:30
    command("Whitelisted", 9, 30, user_id="u-3"),               # after its own blacklisting at 09:00
    command("Blacklisted", 9, user_id="u-3"),
    command("Blacklisted", 7, user_id="u-4"),                   # loses to the API whitelist at 08:00
    make_event(user_id="u-1", device_id="d-1", EventTime=at(13)),  # ordinary events: data to sweep
    make_event(user_id="u-2", device_id="d-2", EventTime=at(13)),
    make_event(email="lead@example.com", scope="shop", EventTime=at(13)),
    make_event(user_id="u-3", EventTime=at(13)),
    make_event(user_id="u-4", EventTime=at(13)),
]


def prepare_registry(reg: Registry) -> None:
    """Changes made through the CLI and the API before the sweep reads the snapshot."""
    reg.set_status(user_id="u-1", blacklisted=False, at=iso(10, 0), channel="cli")
    reg.set_status(user_id="u-2", blacklisted=False, at=iso(10, 0), channel="cli")
    reg.set_status(email="lead@example.com", scope="shop", blacklisted=False, at=iso(8, 30),
                   channel="api")
    reg.set_status(user_id="u-4", blacklisted=True, at=iso(6, 0), channel="api")
    reg.set_status(user_id="u-4", blacklisted=False, at=iso(8, 0), channel="api")


EXPECTED = {"u-1": False, "u-2": True, "u-3": False, "u-4": False}


def assert_latest_wins(reg: Registry) -> None:
    assert {u: reg.status(user_id=u)["blacklisted"] for u in EXPECTED} == EXPECTED
    lead = reg.status(email="lead@example.com", scope="shop")
    assert lead["blacklisted"] and lead["channel"] == "event" and lead["since"] == iso(12)
    assert reg.status(user_id="u-1")["channel"] == "cli"


def test_snapshot_commands_interleave_with_cli_changes(tmp_path):
    config = events_config(tmp_path, event_name="EventType", event_time="EventTime")
    write(config.source / "part-0.parquet", SNAPSHOT, EVENT_SCHEMA)
    reg = Registry(tmp_path / "blacklist.db")
    prepare_registry(reg)

    batch = read_commands(config)
    assert len(batch.items) == 6 and batch.files == 1
    assert batch.items[2] == {"event": "Blacklisted", "email": "Lead@Example.com", "businessUnit": "shop",
                              "timestamp": at(12).isoformat()}
    counts = reg.apply_events(batch.items, channel="event", numbers=batch.origins)
    assert counts["applied"] == 4 and counts["superseded"] == 2  # u-1 at 09:00, u-4 at 07:00
    assert_latest_wins(reg)

    # Reading the same snapshot again changes nothing, and the version stays.
    version = reg.snapshot().version
    again = reg.apply_events(read_commands(config).items, channel="event")
    assert again["duplicate"] == 6 and reg.snapshot().version == version

    # A CLI change after the sweep read the snapshot still wins if it is the latest action...
    reg.set_status(user_id="u-2", blacklisted=False, at=iso(11, 30), channel="cli")
    assert not reg.status(user_id="u-2")["blacklisted"]
    # ...and loses if it is older than the snapshot's event.
    out = reg.set_status(email="lead@example.com", scope="shop", blacklisted=False, at=iso(11, 59),
                         channel="cli")
    assert out["blacklisted"] and out["Outcome"] == "superseded"


def test_without_event_time_a_command_happens_when_read(tmp_path):
    config = events_config(tmp_path, event_name="EventType")
    write(config.source / "a.parquet", [command("Blacklisted", 9, user_id="u-9")], EVENT_SCHEMA)
    reg = Registry(tmp_path / "blacklist.db")
    reg.set_status(user_id="u-9", blacklisted=False, at=iso(10, 0), channel="cli")
    batch = read_commands(config)
    assert "timestamp" not in batch.items[0]
    reg.apply_events(batch.items)
    assert reg.status(user_id="u-9")["blacklisted"]


def test_no_event_name_means_no_commands(tmp_path):
    config = events_config(tmp_path)
    write(config.source / "a.parquet", SNAPSHOT, EVENT_SCHEMA)
    assert read_commands(config).items == []


def test_a_bad_command_row_names_file_and_row_and_applies_nothing(tmp_path):
    config = events_config(tmp_path, event_name="EventType", event_time="EventTime")
    rows = [command("Blacklisted", 9, user_id="u-1"), command("Blacklisted", 9, anonymous=True)]
    write(config.source / "part-7.parquet", rows, EVENT_SCHEMA)
    reg = Registry(tmp_path / "blacklist.db")
    batch = read_commands(config)
    with pytest.raises(InputError) as err:
        reg.apply_events(batch.items, channel="event", numbers=batch.origins)
    assert "dataset 'events' file part-7.parquet row 1" in str(err.value)
    assert reg.snapshot().count == 0 and reg.history() == []


@pytest.mark.parametrize("overrides, message", [
    ({"event_name": "Nope"}, "'Nope' is missing"),
    ({"event_name": "EventType", "event_time": "Amount"}, "expected a timestamp"),
    ({"event_name": "EventTime"}, "expected a string"),
])
def test_misconfigured_command_columns_name_dataset_and_column(tmp_path, overrides, message):
    config = events_config(tmp_path, **overrides)
    write(config.source / "a.parquet", SNAPSHOT, EVENT_SCHEMA)
    with pytest.raises(SchemaError) as err:
        read_commands(config)
    assert message in str(err.value) and "'events'" in str(err.value)


def test_string_event_times(tmp_path):
    schema = pa.schema([("EventType", pa.string()), ("UserId", pa.string()), ("At", pa.string())])
    config = events_config(tmp_path, email=None, user_id="UserId", device_id=None, scope=None,
                           event_name="EventType", event_time="At")
    write(config.source / "a.parquet", [{"EventType": "Whitelisted", "UserId": "u-1", "At": at(10).astimezone(timezone(timedelta(hours=1))).isoformat()},
                                        {"EventType": "Blacklisted", "UserId": "u-1", "At": iso(8, 30)}],
          schema)
    reg = Registry(tmp_path / "blacklist.db")
    reg.apply_events(read_commands(config).items)
    assert not reg.status(user_id="u-1")["blacklisted"]  # Whitelisted at 10:00 (written as +01:00) is the later one


CONFIG = lake_toml(events(source="raw/events", event_name="EventType", event_time="EventTime"))


def test_the_sweep_applies_snapshot_commands_before_matching(prefect_harness, tmp_path):
    from flows.sweep import gdpr_sweep

    (tmp_path / "gdpr-sweep.toml").write_text(CONFIG)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    write(settings.dataset("events").source / "part-0.parquet", SNAPSHOT, EVENT_SCHEMA)
    reg = Registry(settings.blacklist_db)
    prepare_registry(reg)

    report = json.loads(open(gdpr_sweep(config=str(settings.config_path))).read())
    assert_latest_wins(reg)
    assert report["blacklist"]["version"] == reg.snapshot().version

    kept = read_dataset(settings.dataset("events")).to_pylist()
    users = {(r["User"] or {}).get("UserId") for r in kept}
    emails = {(r["User"] or {}).get("Email") for r in kept}
    assert "u-2" not in users and "lead@example.com" not in emails and "Lead@Example.com" not in emails
    assert {"u-1", "u-3", "u-4"} <= users
    assert len(kept) == len(SNAPSHOT) - 4  # u-2 and the lead: their command rows and their data rows
