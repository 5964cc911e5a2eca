"""The sample population: numeric per-profile attributes shared by profiles and events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from pipelines.sample.vocab import (
    _DAY_US,
    _DEVICE_COUNT_P,
    _DEVICE_IDS_NULL_SHARE,
    _EMAIL_NULL_SHARE,
    _EPOCH,
    _EXTRA_DEVICE_SHARE,
    _EXTRA_DEVICE_SHARE_UNLISTED,
    _INFO_NULL_SHARE,
    _LEAD_SHARE,
    _MAX_ACTIVE_DAYS,
    _NAMES_FIRST,
    _NAMES_LAST,
    _PROFILE_SCOPE_P,
    COUNTRIES,
    DOMAINS,
)


def _day_start_us(start: date, day: int) -> int:
    return ((start - _EPOCH).days + day) * _DAY_US


def _child_rng(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """An independent generator for one stream (profiles batch, day plan, events batch)."""
    return np.random.default_rng([seed, stream, *keys])


# ---------------------------------------------------------------------------------------------
# Population: numeric per-profile attributes shared by profiles and events.


@dataclass(frozen=True)
class _Population:
    first: np.ndarray          # index into the first-name vocabulary
    last: np.ndarray           # index into the last-name vocabulary
    domain: np.ndarray         # index into DOMAINS
    country: np.ndarray        # index into COUNTRIES
    scope: np.ndarray          # index into SCOPES (0-6)
    has_user: np.ndarray       # UserId present (not a lead)
    info_null: np.ndarray      # Info struct null
    has_email: np.ndarray      # Info.Email present
    device_count: np.ndarray   # listed devices (0 when DeviceIds is null)
    device_null: np.ndarray    # DeviceIds null
    device_offset: np.ndarray  # first listed device ordinal; length n + 1
    extra_device: np.ndarray   # ordinal of the device seen only in events, or -1
    unknown_base: int          # ordinals from here on belong to no profile
    device_key: np.uint64      # scrambles device ordinals into ids
    weight: np.ndarray         # activity (relative events per active day)
    ip: np.ndarray             # usual IPv4 address, uint32
    first_day: np.ndarray      # first and last active day
    last_day: np.ndarray
    active_days: np.ndarray    # number of active days
    pair_profile: np.ndarray   # (profile, active day) pairs sorted by day: the profile ...
    day_offsets: np.ndarray    # ... and where each day's pairs start; length days + 1

    @property
    def size(self) -> int:
        return len(self.first)


def _at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`values[index]`, or zeros when there are no profiles (then no row refers to one)."""
    return values[index] if len(values) else np.zeros(len(index), dtype=values.dtype)


def _population(rng: np.random.Generator, n: int, days: int) -> _Population:
    """Draw every per-profile attribute the profiles and the events both need (compact dtypes)."""
    info_null = rng.random(n) < _INFO_NULL_SHARE
    device_null = rng.random(n) < _DEVICE_IDS_NULL_SHARE
    device_count = np.where(device_null, 0, rng.choice(4, size=n, p=_DEVICE_COUNT_P)).astype(np.int8)
    device_offset = np.concatenate([[0], np.cumsum(device_count, dtype=np.int64)])
    listed = int(device_offset[-1])
    has_extra = rng.random(n) < np.where(device_count > 0, _EXTRA_DEVICE_SHARE, _EXTRA_DEVICE_SHARE_UNLISTED)
    extra_device = np.where(has_extra, listed + np.cumsum(has_extra) - 1, -1)
    active = _active_days(rng, n, days)
    return _Population(
        first=rng.integers(0, len(_NAMES_FIRST), n, dtype=np.int16),
        last=rng.integers(0, len(_NAMES_LAST), n, dtype=np.int16),
        domain=rng.integers(0, len(DOMAINS), n, dtype=np.int16),
        country=rng.integers(0, len(COUNTRIES), n, dtype=np.int16),
        scope=rng.choice(len(_PROFILE_SCOPE_P), size=n, p=_PROFILE_SCOPE_P).astype(np.int8),
        has_user=rng.random(n) >= _LEAD_SHARE,
        info_null=info_null,
        has_email=~info_null & (rng.random(n) >= _EMAIL_NULL_SHARE),
        device_count=device_count,
        device_null=device_null,
        device_offset=device_offset,
        extra_device=extra_device,
        unknown_base=listed + int(has_extra.sum()),
        device_key=np.uint64(rng.integers(0, 1 << 48)),
        weight=rng.lognormal(0.0, 1.0, n),
        ip=rng.integers(0, 1 << 32, n, dtype=np.uint32, endpoint=False),
        **active,
    )


def _active_days(rng: np.random.Generator, n: int, days: int) -> dict[str, np.ndarray]:
    """1-5 distinct active days per profile, and the (profile, day) pairs sorted by day."""
    wanted = rng.integers(1, _MAX_ACTIVE_DAYS + 1, n, dtype=np.int8)
    picks = rng.integers(0, days, (n, _MAX_ACTIVE_DAYS), dtype=np.int32)
    picks[np.arange(_MAX_ACTIVE_DAYS) >= wanted[:, None]] = days  # `days` marks an unused slot
    picks.sort(axis=1)
    picks[:, 1:][picks[:, 1:] == picks[:, :-1]] = days  # drop repeated days
    valid = picks < days
    per_profile = valid.sum(axis=1, dtype=np.int8)
    pair_day = picks[valid]  # row by row, so profile by profile
    order = np.argsort(pair_day, kind="stable")
    pair_profile = np.repeat(np.arange(n, dtype=np.int32), per_profile)[order]
    return {
        "first_day": picks[:, 0],
        "last_day": np.where(valid, picks, -1).max(axis=1, initial=-1),
        "active_days": per_profile,
        "pair_profile": pair_profile,
        "day_offsets": np.searchsorted(pair_day[order], np.arange(days + 1)),
    }


def _events_per_day(rng: np.random.Generator, pop: _Population, events: int, days: int) -> np.ndarray:
    """Split `events` over the days, in proportion to each day's activity (plus a small floor)."""
    pair_day = np.repeat(np.arange(days), np.diff(pop.day_offsets))
    activity = np.bincount(pair_day, weights=pop.weight[pop.pair_profile], minlength=days)
    share = activity + (activity.mean() * 0.05 if activity.any() else 1.0)
    return rng.multinomial(events, share / share.sum())


# ---------------------------------------------------------------------------------------------
# Vectorised string building.

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
