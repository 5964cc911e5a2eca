"""Retention holds (§3, GDPR Art. 17(3)): rows a legal duty requires to keep, as the sweep sees them.

A hold covers one entry (every dataset), one dataset (every entry) or one entry in one dataset. While
it is active (not released, end date not reached) the sweep keeps exactly the rows whose only
reasons to go are (entry, dataset) pairs it covers: `pipelines.core.match.find_matches(held=...)` matches
as usual, then un-drops those rows and counts them as held. A row that another, unheld entry also
matches is erased. The store of holds is the registry database (`pipelines/registry/holds.py`); this module
is pure: holds in, tables and lookups out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

HELD_SCHEMA = pa.schema([("bid", pa.string()), ("dataset", pa.string())])
"""One active hold: `bid` None covers every entry, `dataset` None every dataset."""


@dataclass(frozen=True)
class Hold:
    hold_id: str
    blacklist_id: str | None
    dataset: str | None
    reason: str
    until: str | None
    """End date (UTC, the registry's time format), or None: held until released."""
    placed_at: str
    channel: str
    released_at: str | None = None
    release_channel: str | None = None
    settled_run: str | None = None
    """The first sweep that ran after the hold ended (it erased the rows the hold had kept)."""

    def active_at(self, now_text: str) -> bool:
        """Times are compared as text: every stored time has the same fixed-width UTC form."""
        return self.released_at is None and (self.until is None or self.until > now_text)

    def ended_at(self, now_text: str) -> str | None:
        """When the hold stopped covering rows (released, or its end date), or None while active."""
        if self.released_at is not None:
            return self.released_at if self.until is None else min(self.released_at, self.until)
        if self.until is not None and self.until <= now_text:
            return self.until
        return None

    def covers(self, blacklist_id: str, dataset: str) -> bool:
        return self.blacklist_id in (None, blacklist_id) and self.dataset in (None, dataset)

    def to_json(self) -> dict[str, str | None]:
        return {_KEYS[k]: v for k, v in asdict(self).items()}


_KEYS = {"hold_id": "HoldId", "blacklist_id": "BlacklistId", "dataset": "Dataset", "reason": "Reason",
         "until": "Until", "placed_at": "PlacedAt", "channel": "Channel", "released_at": "ReleasedAt",
         "release_channel": "ReleaseChannel", "settled_run": "SettledRun"}


def active(holds: Iterable[Hold], now_text: str) -> list[Hold]:
    return [h for h in holds if h.active_at(now_text)]


def held_table(holds: Iterable[Hold], now_text: str) -> pa.Table:
    """The active holds as (bid, dataset) pairs for `find_matches(held=...)`."""
    rows = [{"bid": h.blacklist_id, "dataset": h.dataset} for h in active(holds, now_text)]
    return pa.Table.from_pylist(rows, schema=HELD_SCHEMA)


def recheck_ids(holds: Iterable[Hold], now_text: str, entry_ids: Sequence[str]) -> set[str]:
    """Entries an incremental sweep must match against every file again, whatever their files were
    verified against: those under an active hold (their kept rows are counted each run) and those
    whose hold ended since the last sweep (their kept rows go now). A dataset-wide hold concerns
    every entry."""
    ids: set[str] = set()
    for h in holds:
        if h.active_at(now_text) or h.settled_run is None:
            if h.blacklist_id is None:
                return set(entry_ids)
            ids.add(h.blacklist_id)
    return ids


def to_settle(holds: Iterable[Hold], now_text: str) -> list[str]:
    """Ended holds no sweep has acted on yet: the run that read them at `now_text` settles them."""
    return [h.hold_id for h in holds if h.settled_run is None and h.ended_at(now_text) is not None]


def holding(holds: Iterable[Hold], blacklist_id: str, dataset: str, now_text: str) -> Hold | None:
    """The active hold that keeps this entry's rows in this dataset: the most specific one, and among
    equals the one that ends last (None = never)."""
    found = [h for h in active(holds, now_text) if h.covers(blacklist_id, dataset)]
    if not found:
        return None
    return min(found, key=lambda h: ((h.blacklist_id is None) + (h.dataset is None), h.until is not None,
                                     _neg(h.until or "")))


def _neg(text: str) -> str:
    """A key that sorts later times first."""
    return "".join(chr(0x10FFFF - ord(c)) for c in text)


@dataclass(frozen=True)
class HoldState:
    """The holds one run read (at `now_text`) and the rows they kept: what its report says about holds."""

    holds: tuple[Hold, ...]
    now_text: str
    held_rows: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Dataset -> BlacklistId -> rows kept under a hold in the run's outputs."""

    def table(self) -> pa.Table:
        return held_table(self.holds, self.now_text)

    def with_rows(self, held_rows: Mapping[str, Mapping[str, int]]) -> HoldState:
        return HoldState(self.holds, self.now_text, {d: dict(r) for d, r in held_rows.items() if r})

    def entry_rows(self, blacklist_id: str) -> dict[str, int]:
        return {d: rows[blacklist_id] for d, rows in sorted(self.held_rows.items()) if rows.get(blacklist_id)}

    def entry_held(self, blacklist_id: str) -> list[dict[str, Any]]:
        """Per dataset where the entry has rows kept: how many, and the hold that keeps them."""
        out = []
        for dataset, n in self.entry_rows(blacklist_id).items():
            h = holding(self.holds, blacklist_id, dataset, self.now_text)
            out.append({"dataset": dataset, "rows": n, "hold_id": h.hold_id if h else None,
                        "reason": h.reason if h else None, "until": h.until if h else None})
        return out

    def report_block(self) -> dict[str, Any]:
        """The report's `holds`: the active holds, and those that ended since the last sweep (this run
        erased what they had kept)."""
        ended = [h for h in self.holds if h.ended_at(self.now_text) is not None]
        return {
            "checked_at": self.now_text,
            "active": [_public(h) for h in active(self.holds, self.now_text)],
            "ended_since_last_sweep": [{**_public(h), "ended_at": h.ended_at(self.now_text)} for h in ended],
            "rows_held": {d: sum(r.values()) for d, r in sorted(self.held_rows.items())},
        }


def _public(h: Hold) -> dict[str, Any]:
    return {"hold_id": h.hold_id, "blacklist_id": h.blacklist_id, "dataset": h.dataset, "reason": h.reason,
            "until": h.until, "placed_at": h.placed_at, "released_at": h.released_at}
