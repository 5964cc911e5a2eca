"""Deterministic sample data in Optimizely shapes: profiles, daily event files and a blacklist.

`generate` writes, under `out_dir`:

- `profiles/profiles-0000.parquet`, ... (at most `PROFILES_PER_FILE` profiles per file);
- `events/YYYY-MM-DD.parquet`, one file per day;
- `blacklist.json`, a sample blacklist in the Optimizely list format.

The data exercises every matching rule: emails in mixed case and padding, null/empty/case-variant
scopes, anonymous events from devices listed on a profile, devices that appear only in events, leads
without a UserId, and emails that belong to no profile. Each profile is active on a few days and its
events cluster around one session per active day.

Memory: the population keeps a few numeric arrays per profile (no strings); events are planned one
day at a time (a time, a profile and a source per event, sorted by time) and their columns are built
and written one row group at a time, so tens of millions of events fit in a few hundred MB.

Determinism: every random draw comes from a generator seeded by `seed` and a fixed stream tag, the
Parquet writer settings are fixed and nothing reads the clock, so equal arguments give equal bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from pipelines.sample.blacklist import _blacklist_items
from pipelines.sample.events import _write_event_day
from pipelines.sample.files import _remove_stale, _write_json_atomic
from pipelines.sample.population import _day_start_us, _events_per_day, _population
from pipelines.sample.profiles import _write_profiles
from pipelines.sample.vocab import _EVENT_FILE_RE, _PROFILE_FILE_RE


@dataclass(frozen=True)
class GenerateResult:
    profiles_files: int
    profiles_rows: int
    events_files: int
    events_rows: int
    blacklist_sample: list[dict]
    """The items written to `blacklist.json` (emails normalised)."""


def generate(out_dir: Path, *, profiles: int = 2000, events: int = 50_000, days: int = 14,
             seed: int = 42, start: date = date(2026, 11, 1), blacklist: int = 8) -> GenerateResult:
    """Write a deterministic sample lake (profiles, one events file per day, blacklist) to `out_dir`.

    Files are written atomically (temporary name, then rename). Earlier generated files that this
    run does not write (other dates, surplus profile chunks) are removed so the folders hold one run.
    Raises ValueError for negative sizes, `days < 1`, a negative seed, or too few profiles to pick
    `blacklist` entries from.
    """
    _check_arguments(profiles=profiles, events=events, days=days, seed=seed, blacklist=blacklist)
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    pop = _population(rng, profiles, days)
    per_day = _events_per_day(rng, pop, events, days)
    items = _blacklist_items(rng, pop, blacklist)

    profile_files = _write_profiles(out_dir / "profiles", pop, seed, start)
    event_files = []
    for day in range(days):
        path = out_dir / "events" / f"{(start + timedelta(days=day)).isoformat()}.parquet"
        _write_event_day(path, pop, day, int(per_day[day]), seed, _day_start_us(start, day))
        event_files.append(path)
    _remove_stale(out_dir / "profiles", _PROFILE_FILE_RE, profile_files)
    _remove_stale(out_dir / "events", _EVENT_FILE_RE, event_files)
    _write_json_atomic(out_dir / "blacklist.json", {"total": len(items), "count": len(items), "items": items})
    return GenerateResult(profiles_files=len(profile_files), profiles_rows=profiles,
                          events_files=len(event_files), events_rows=events,
                          blacklist_sample=[dict(item) for item in items])


def _check_arguments(**values: int) -> None:
    for name in ("profiles", "events", "seed", "blacklist"):
        if values[name] < 0:
            raise ValueError(f"{name} must be >= 0, got {values[name]}")
    if values["days"] < 1:
        raise ValueError(f"days must be >= 1, got {values['days']}")
