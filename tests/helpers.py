"""Factories for tiny profile and event tables, and a sweep run without Prefect."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config.settings import DatasetConfig
from pipelines.core.match import connect, entries_table, find_matches
from pipelines.core.model import Entry
from pipelines.datasets.sweep import plan_dataset, publish_version, verify_versions, write_version
from tests.support.lake import lake_toml, two_datasets

INFO = pa.struct([("Email", pa.string()), ("Country", pa.string())])
USER = pa.struct([("Name", pa.string()), ("Email", pa.string()), ("UserId", pa.string())])
PROFILE_SCHEMA = pa.schema([
    ("ProfileId", pa.string()),
    ("UserId", pa.string()),
    ("DeviceIds", pa.list_(pa.string())),
    ("Name", pa.string()),
    ("Scope", pa.string()),
    ("Info", INFO),
    ("Visits", pa.int32()),
    ("Score", pa.decimal128(10, 2)),
    ("UpdateTime", pa.timestamp("us", tz="Europe/Berlin")),
])
EVENT_SCHEMA = pa.schema([
    ("DeviceId", pa.string()),
    ("EventType", pa.string()),
    ("Scope", pa.string()),
    ("User", USER),
    ("EventTime", pa.timestamp("ns", tz="UTC")),
    ("Amount", pa.decimal128(12, 3)),
])
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_profile(email="a@example.com", user_id=None, device_ids=(), scope=None, **extra):
    row = {"ProfileId": extra.pop("profile_id", "p"), "UserId": user_id, "DeviceIds": list(device_ids)
           if device_ids is not None else None, "Name": "N", "Scope": scope,
           "Info": None if extra.pop("no_info", False) else {"Email": email, "Country": "DE"},
           "Visits": 3, "Score": Decimal("12.34"), "UpdateTime": T0}
    row.update(extra)
    return row


def make_event(email=None, user_id=None, device_id=None, scope=None, anonymous=False, **extra):
    row = {"DeviceId": device_id, "EventType": "pageview", "Scope": scope,
           "User": None if anonymous else {"Name": "N", "Email": email, "UserId": user_id},
           "EventTime": T0, "Amount": Decimal("1.005")}
    row.update(extra)
    return row


def logical_profile(row):
    return {"email": (row["Info"] or {}).get("Email"), "user_id": row["UserId"], "scope": row["Scope"],
            "device_ids": row["DeviceIds"]}


def logical_event(row):
    user = row["User"] or {}
    return {"email": user.get("Email"), "user_id": user.get("UserId"), "scope": row["Scope"],
            "device_id": row["DeviceId"]}


def write(path: Path, rows, schema, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, **kwargs)
    return path


def profiles_config(root: Path, **overrides) -> DatasetConfig:
    fields = dict(name="profiles", kind="profiles", path=root / "clean" / "profiles",
                  source=root / "raw" / "profiles", email="Info.Email", user_id="UserId",
                  device_ids="DeviceIds", scope="Scope")
    fields.update(overrides)
    return DatasetConfig(**fields)


def events_config(root: Path, **overrides) -> DatasetConfig:
    fields = dict(name="events", kind="events", path=root / "clean" / "events", source=root / "raw" / "events",
                  email="User.Email", user_id="User.UserId", device_id="DeviceId", scope="Scope")
    fields.update(overrides)
    return DatasetConfig(**fields)


def entry(email=None, user_id=None, scope=None, bid=None):
    return Entry(bid or f"bid-{email or ''}-{user_id or ''}-{scope or ''}", email, user_id, scope)


def sweep(configs, entries, run_id="r1", link_through_events=True, version=1):
    """Plan, match, purge, verify and publish, as the flow does, without Prefect."""
    plans = [plan_dataset(c) for c in configs]
    table = entries_table(entries)
    with connect() as con:
        matches = find_matches(con, table, [p.as_input() for p in plans], link_through_events)
        outcomes = [write_version(p, matches.datasets[p.config.name], run_id, version) for p in plans]
        verification = verify_versions(con, table, outcomes, configs, matches, link_through_events)
    assert verification.ok, verification
    for c, o in zip(configs, outcomes, strict=True):
        publish_version(c, o)
    return outcomes, verification


def read_dataset(config: DatasetConfig) -> pa.Table:
    files = sorted(config.path.glob("**/*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else None


def lake_config(source_root: str | None = "raw") -> str:
    """The TOML of a two-dataset lake (profiles + events, Optimizely columns) under a test folder.

    `source_root` is where raw snapshots land (`<root>/profiles`, `<root>/events`); None: no source.
    """
    return lake_toml(*two_datasets(source_root))
