"""Retention holds in the registry database (§3, GDPR Art. 17(3)): placed, released, listed.

A table `holds` beside the blacklist in the same SQLite file (WAL mode, so the API, the CLI and a
running sweep share it). Rows are never deleted: a release sets `released_at`, and the first sweep
after a hold ends records itself in `settled_run`. Placing and releasing a hold are also records of
the report hash chain (`pipelines.reporting.hold_records`), written inside the database transaction so the
two never disagree: if the chain record cannot be written, the hold is not placed (or released).

A hold names BlacklistIds and dataset names only; its reason is free text that goes into reports,
so a reason that contains an email address is refused.
"""

from __future__ import annotations

import builtins
import dataclasses
import re
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config.settings import Settings
from pipelines.core.errors import InputError, NotFound
from pipelines.core.holds import Hold, held_table
from pipelines.registry.registry import Registry, format_time, utc_now
from pipelines.reporting import hold_records

if TYPE_CHECKING:
    import pyarrow as pa

MAX_REASON = 500
CHANNELS = ("cli", "api")
_COLUMNS = ("hold_id, blacklist_id, dataset, reason, until, placed_at, channel, released_at, release_channel, "
            "settled_run")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS holds (
    hold_id TEXT PRIMARY KEY,
    blacklist_id TEXT,
    dataset TEXT,
    reason TEXT NOT NULL,
    until TEXT,
    placed_at TEXT NOT NULL,
    channel TEXT NOT NULL,
    released_at TEXT,
    release_channel TEXT,
    settled_run TEXT,
    CHECK (blacklist_id IS NOT NULL OR dataset IS NOT NULL)
)"""
_HAS_TABLE = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'holds'"
_EMAIL_RE = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def parse_until(value: str | None, now: datetime | None = None) -> str | None:
    """An end date (ISO 8601 date or time; no zone = UTC) in the registry's time form; it must lie ahead."""
    if value is None or not str(value).strip():
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError("invalid end date: expected ISO 8601 like 2027-06-30 or 2027-06-30T12:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= (now or datetime.now(UTC)):
        raise InputError("invalid end date: it must lie in the future")
    return format_time(moment)


def check_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise InputError("a hold needs a reason (the legal duty or claim, e.g. 'tax records, HGB 257')")
    if len(text) > MAX_REASON or any(ord(c) < 32 for c in text):
        raise InputError(f"the reason must be one line of at most {MAX_REASON} characters")
    if _EMAIL_RE.search(text):
        raise InputError("the reason must not contain an email address: it is printed in reports and certificates")
    return text


def hold_json(hold: Hold, now: str | None = None) -> dict[str, str | None]:
    """A hold as the CLI and the API print it, with its state now (`active`, `released`, `expired`)."""
    now = now or utc_now()
    state = "active" if hold.active_at(now) else ("released" if hold.released_at else "expired")
    return hold.to_json() | {"State": state}


class HoldStore:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.path = Path(settings.blacklist_db)
        self._registry = Registry(self.path)
        self._ready = False

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A transaction on the registry's file (`Registry.transaction`: its connection, locking and
        errors), with the holds table created there first if it is missing."""
        if not self._ready:
            with self._registry.transaction() as con:
                present = con.execute(_HAS_TABLE).fetchone() is not None
            if not present:
                with self._registry.transaction(write=True) as con:
                    con.execute(_SCHEMA)
            self._ready = True
        with self._registry.transaction(write) as con:
            yield con

    def list(self, include_ended: bool = True) -> list[Hold]:
        with self._connect() as con:
            rows = con.execute(f"SELECT {_COLUMNS} FROM holds ORDER BY placed_at, hold_id").fetchall()
        holds = [Hold(*r) for r in rows]
        return holds if include_ended else [h for h in holds if h.active_at(utc_now())]

    def get(self, hold_id: str) -> Hold:
        with self._connect() as con:
            row = con.execute(f"SELECT {_COLUMNS} FROM holds WHERE hold_id = ?", [hold_id]).fetchone()
        if row is None:
            raise NotFound(f"no retention hold with id {hold_id[:64]!r}")
        return Hold(*row)

    def place(self, blacklist_id: str | None, dataset: str | None, reason: str | None, until: str | None,
              channel: str = "cli") -> Hold:
        """Place a hold on an entry, a dataset, or an entry in a dataset; record it in the report chain."""
        if channel not in CHANNELS:
            raise InputError(f"unknown channel {channel!r}")
        if blacklist_id is None and dataset is None:
            raise InputError("a hold needs --blacklist-id, --dataset, or both")
        names = [d.name for d in self.settings.datasets]
        if dataset is not None and dataset not in names:
            raise InputError(f"unknown dataset {dataset[:64]!r}; configured: {', '.join(names)}")
        if blacklist_id is not None:
            if not _UUID_RE.fullmatch(blacklist_id):
                raise InputError(f"invalid BlacklistId {blacklist_id[:64]!r}: expected a UUID")
            Registry(self.path).get(blacklist_id)  # NotFound for an unknown entry
        hold = Hold(str(uuid.uuid4()), blacklist_id, dataset, check_reason(reason), parse_until(until), utc_now(),
                    channel)
        with self._connect(write=True) as con:
            con.execute(f"INSERT INTO holds ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [hold.hold_id, hold.blacklist_id, hold.dataset, hold.reason, hold.until, hold.placed_at,
                         hold.channel, None, None, None])
            hold_records.record(self.settings.report_dir, hold, "place", hold.placed_at)
        return hold

    def release(self, hold_id: str, channel: str = "cli") -> Hold:
        """Release a hold (the next sweep erases the rows it kept); record it in the report chain."""
        if channel not in CHANNELS:
            raise InputError(f"unknown channel {channel!r}")
        with self._connect(write=True) as con:
            row = con.execute(f"SELECT {_COLUMNS} FROM holds WHERE hold_id = ?", [hold_id]).fetchone()
            if row is None:
                raise NotFound(f"no retention hold with id {hold_id[:64]!r}")
            hold = Hold(*row)
            now = utc_now()
            if hold.ended_at(now) is not None:
                raise InputError(f"hold {hold_id} has already ended ({hold.ended_at(now)})")
            con.execute("UPDATE holds SET released_at = ?, release_channel = ? WHERE hold_id = ?",
                        [now, channel, hold_id])
            released = dataclasses.replace(hold, released_at=now, release_channel=channel)
            hold_records.record(self.settings.report_dir, released, "release", now)
        return released

    def for_sweep(self) -> builtins.list[Hold]:
        """The holds a sweep must know: active ones, and ended ones no sweep has acted on yet."""
        now = utc_now()
        return [h for h in self.list() if h.active_at(now) or h.settled_run is None]

    def held_now(self) -> pa.Table:
        """The active holds as (bid, dataset) pairs, for an operation outside the sweep (ClearUserData)."""
        return held_table(self.list(), utc_now())

    def settle(self, hold_ids: Sequence[str], run_id: str) -> None:
        """Record that `run_id`, a sweep that read these holds after they ended, erased what they kept."""
        if not hold_ids:
            return
        with self._connect(write=True) as con:
            con.executemany("UPDATE holds SET settled_run = ? WHERE hold_id = ? AND settled_run IS NULL",
                            [(run_id, h) for h in hold_ids])
