"""Tiny lakes, real registries and real sealed reports for the report tests (issue 5).

`Lake` writes a profiles and an events raw snapshot with two people to forget (Anna, Bo) and one
to keep (Cleo), a real SQLite blacklist, and runs the sweep's pipeline steps plus
`write_audit_report`, as the flow does, without Prefect.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.config.settings import Settings, load_settings
from pipelines.core.match import entries_table
from pipelines.registry.registry import Record, Registry, format_time
from pipelines.reporting import report as reports
from pipelines.reporting.audit import write_audit_report
from tests.helpers import EVENT_SCHEMA, PROFILE_SCHEMA, make_event, make_profile, sweep, write
from tests.support.lake import two_datasets, write_lake_config

SECRET = b"test-report-secret-0123456789abcdef"

PEOPLE = {
    "anna": {"email": "anna.berg@example.com", "name": "Anna Berg", "user_id": "u-anna", "device": "dev-anna-1"},
    "bo": {"email": "bo.nielsen@example.org", "name": "Bo Nielsen", "user_id": "u-bo", "device": "dev-bo-7"},
    "cleo": {"email": "cleo.keep@example.net", "name": "Cleo Keep", "user_id": "u-cleo", "device": "dev-cleo-3"},
}



def write_config(root: Path, delete_raw: bool = False, *more: dict[str, Any],
                 tables: dict[str, dict[str, Any]] | None = None, **sweep: Any) -> Path:
    """The two-dataset lake (raw snapshots under raw/) plus `more` datasets, `[sweep]` keys from `sweep`,
    other top-level `tables` (e.g. `{"scan": {...}}`)."""
    return write_lake_config(root, *two_datasets(), *more, sweep={"delete_raw": delete_raw, **sweep},
                             **(tables or {}))


def write_raw(root: Path, day: str = "2026-11-01") -> None:
    """One profiles file and one events file per call (events named by day), three people each."""
    profiles, events = [], []
    for key, p in PEOPLE.items():
        profiles.append(make_profile(email=p["email"].upper() if key == "bo" else p["email"], user_id=p["user_id"],
                                     device_ids=[p["device"]], profile_id=f"p-{key}", Name=p["name"]))
        events += [make_event(email=p["email"], device_id=p["device"], User={"Name": p["name"], "Email": p["email"],
                                                                              "UserId": p["user_id"]}),
                   make_event(device_id=p["device"], anonymous=True)]
    write(root / "raw" / "profiles" / "profiles-0000.parquet", profiles, PROFILE_SCHEMA)
    write(root / "raw" / "events" / f"{day}.parquet", events, EVENT_SCHEMA)


def set_created_at(db: Path, blacklist_id: str, hours_ago: float) -> str:
    """Move an entry's creation back in time in the SQLite file (an entry added `hours_ago` ago)."""
    created = format_time(datetime.now(UTC) - timedelta(hours=hours_ago))
    with sqlite3.connect(db) as con:
        con.execute("UPDATE entries SET created_at = ? WHERE blacklist_id = ?", [created, blacklist_id])
    return created


@dataclass
class Lake:
    root: Path
    delete_raw: bool = False

    def __post_init__(self) -> None:
        self.config = write_config(self.root, self.delete_raw)
        write_raw(self.root)
        self.settings: Settings = load_settings(self.config)
        self.registry = Registry(self.settings.blacklist_db)
        self.runs = 0

    def forget(self, who: str, hours_ago: float | None = None, by: str = "email") -> Record:
        p = PEOPLE[who]
        record, _ = self.registry.add(**({"email": p["email"]} if by == "email" else {"user_id": p["user_id"]}))
        if hours_ago is not None:
            set_created_at(self.settings.blacklist_db, record.blacklist_id, hours_ago)
        return self.registry.get(record.blacklist_id)

    def run(self, secret: bytes = SECRET) -> tuple[Path, dict[str, Any]]:
        """Sweep and write a sealed report; raw files are deleted afterwards when `delete_raw`."""
        self.runs += 1
        snapshot = self.registry.snapshot()
        started = datetime.now(UTC)
        run_id = started.strftime("%Y%m%dT%H%M%S%fZ")
        outcomes, verification = sweep(list(self.settings.datasets), snapshot.entries, run_id=run_id,
                                       version=snapshot.version)
        deleted = []
        if self.delete_raw:
            for ds in self.settings.datasets:
                for f in sorted(ds.source.glob("*.parquet")):
                    f.unlink()
                    deleted.append(str(f))
        now = datetime.now(UTC)
        run = reports.RunInfo(run_id, format_time(started), format_time(now), "test", snapshot.version,
                              str(self.config), True, self.settings.deadline_hours)
        created = {r.blacklist_id: r.created_at for r in snapshot.records}
        assert entries_table(snapshot.entries).num_rows == len(created)
        return write_audit_report(self.settings, run, snapshot.entries, created, outcomes, verification, deleted,
                                  None, secret, now, format_time(now))


def personal_strings() -> list[str]:
    """Every email, name, user id and device id of the people the tests blacklist, in several spellings."""
    out = []
    for key in ("anna", "bo"):
        p = PEOPLE[key]
        out += [p["email"], p["email"].upper(), p["name"], p["user_id"], p["device"]]
    return out
