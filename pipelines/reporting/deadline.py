"""The 24-hour deadline (§1, §5): where each entry's data is still held after a run.

After a run publishes, blacklisted rows can still be held in two places the product manages:
the cleaned datasets (verification re-reads them; a report is only written when it finds none)
and the raw snapshot files still present in each dataset's `source` folder (kept when
`delete_raw` is false; `pipelines.datasets.raw.raw_check` matches them with §3 and counts rows per entry).
`entry_deadlines` turns those counts into each entry's deadline state, carrying
`first_verified_gone_at` forward from the previous report of the chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class EntryDeadline:
    blacklist_id: str
    created_at: str
    age_hours: float
    rows_still_present: int
    first_verified_gone_at: str | None
    """The first report time at which none of the entry's rows were left anywhere the sweep looks."""
    hours_to_gone: float | None
    deadline_hours: float
    unverified: bool = False
    """A place the entry's data could be (an unreadable raw copy) was not checked: it counts as present."""
    rows_held: int = 0
    """Rows kept under a retention hold (pipelines/core/holds.py): neither present nor gone."""
    deadline_from: str | None = None
    """When the deadline clock started: creation, or the end of a retention hold that kept its rows."""
    deadline_age_hours: float | None = None

    @property
    def present(self) -> bool:
        return self.rows_still_present > 0 or self.unverified

    @property
    def overdue(self) -> bool:
        """Older than the deadline and data still present: the run must fail. Held rows do not count."""
        age = self.age_hours if self.deadline_age_hours is None else self.deadline_age_hours
        return self.present and age > self.deadline_hours

    @property
    def deadline_met(self) -> bool | None:
        """True/False once gone (within the deadline or late), False when overdue, None while pending."""
        if self.overdue:
            return False
        if self.rows_held:
            return None
        if self.hours_to_gone is not None:
            return self.hours_to_gone <= self.deadline_hours
        return None

    @property
    def status(self) -> str:
        if self.overdue:
            return "overdue"
        if self.present:
            return "open"
        if self.rows_held:
            return "held"
        return "gone" if self.deadline_met else "gone late"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def hours_between(start: str, end: datetime) -> float:
    return round((end - parse_time(start)).total_seconds() / 3600, 2)


def entry_deadlines(entries: Sequence[tuple[str, str]], still_present: Mapping[str, int],
                    previous_entries: Sequence[Mapping[str, Any]], now: datetime, now_text: str,
                    deadline_hours: float, unverified: bool = False, rows_held: Mapping[str, int] | None = None,
                    hold_ended: Mapping[str, str] | None = None) -> list[EntryDeadline]:
    """Deadline state of each (BlacklistId, created_at); `now_text` is `now` as written in reports.
    `unverified`: some raw copy could not be checked, so no entry can be verified gone by this run.
    `rows_held`: rows kept under a retention hold per entry; while there are any the entry is `held`
    and its deadline clock has not started; it starts when the hold ends (`hold_ended`, else this run)."""
    previous = {e["blacklist_id"]: e for e in previous_entries}
    rows_held, hold_ended = rows_held or {}, hold_ended or {}
    out = []
    for bid, created_at in entries:
        before = previous.get(bid, {})
        still, held = int(still_present.get(bid, 0)), int(rows_held.get(bid, 0))
        start = max(created_at, before.get("deadline_from") or created_at)
        if held:
            start = max(start, now_text)
        elif before.get("rows_held"):
            start = max(start, min(hold_ended.get(bid, start), now_text))
        first_gone = before.get("first_verified_gone_at") or (None if still or unverified or held else now_text)
        to_gone = None if first_gone is None else round(
            (parse_time(first_gone) - parse_time(start)).total_seconds() / 3600, 2)
        out.append(EntryDeadline(bid, created_at, hours_between(created_at, now), still, first_gone, to_gone,
                                 deadline_hours, unverified, held, start, hours_between(start, now)))
    return out
