"""Sample profiles, written in files of at most PROFILES_PER_FILE rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipelines.sample.files import _atomic_parquet
from pipelines.sample.population import _child_rng, _day_start_us, _Population
from pipelines.sample.strings import (
    _decimal_chars,
    _decimals,
    _device_ids,
    _email_locals,
    _emails,
    _fixed_width_strings,
    _join,
    _list_array,
    _names,
    _nulls_where,
    _number_strings,
    _profile_ids,
    _take,
    _timestamps,
    _user_ids,
    _with_prefix,
)
from pipelines.sample.vocab import (
    _COUNTRIES,
    _DAY_US,
    _HOUR_US,
    _LAST_ASCII,
    _PROFILE_EMAIL_P,
    _SCOPES,
    _SEGMENT_P,
    _SEGMENTS,
    _STREAM_PROFILES,
    _VISITOR_GROUPS,
    PROFILE_BATCH_ROWS,
    PROFILE_SCHEMA,
    PROFILES_PER_FILE,
)


def _write_profiles(folder: Path, pop: _Population, seed: int, start: date) -> list[Path]:
    """Write the profiles in files of at most PROFILES_PER_FILE rows (one empty file if none)."""
    paths = []
    for number, lo in enumerate(range(0, max(pop.size, 1), PROFILES_PER_FILE)):
        hi = min(lo + PROFILES_PER_FILE, pop.size)
        path = folder / f"profiles-{number:04d}.parquet"
        with _atomic_parquet(path, PROFILE_SCHEMA) as writer:
            for batch_lo in range(lo, hi, PROFILE_BATCH_ROWS):
                batch = np.arange(batch_lo, min(batch_lo + PROFILE_BATCH_ROWS, hi))
                table = _profiles_table(pop, batch, _child_rng(seed, _STREAM_PROFILES, batch_lo), start)
                writer.write_table(table, row_group_size=len(batch))
        paths.append(path)
    return paths


def _profiles_table(pop: _Population, profile: np.ndarray, rng: np.random.Generator, start: date) -> pa.Table:
    """The profile rows for the (consecutive) profile indexes `profile`."""
    n = len(profile)
    profile_ids = _profile_ids(rng, n)
    first_seen, last_seen, update_time = _profile_times(pop, profile, rng, start)
    columns = {
        "ProfileId": profile_ids,
        "UserId": _nulls_where(_user_ids(profile, pop.size), ~pop.has_user[profile]),
        "DeviceIds": _profile_devices(pop, profile),
        "Name": _names(pop, profile),
        "Scope": _take(_SCOPES, pop.scope[profile]),
        "FirstSeen": _timestamps(first_seen),
        "LastSeen": _timestamps(last_seen),
        "UpdateTime": _timestamps(update_time),
        "Visits": pa.array((pop.active_days[profile] + rng.poisson(4.0, n)).astype(np.int32)),
        "VisitorGroups": _visitor_groups(rng, n),
        "Info": _profile_info(pop, profile, profile_ids, rng),
        "ContactInformation": _contact_information(rng, n),
        "Payload": pa.StructArray.from_arrays(
            [_take(_SEGMENTS, rng.choice(len(_SEGMENT_P), n, p=_SEGMENT_P)),
             _decimals(rng.integers(0, 100_000, n), pa.decimal128(10, 2))],
            fields=list(PROFILE_SCHEMA.field("Payload").type)),
    }
    return pa.Table.from_arrays(list(columns.values()), schema=PROFILE_SCHEMA)


def _profile_times(pop: _Population, profile: np.ndarray, rng: np.random.Generator,
                   start: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FirstSeen <= LastSeen <= UpdateTime; LastSeen falls on the profile's last active day."""
    n = len(profile)
    last_day = pop.last_day[profile].astype(np.int64)
    last_seen = _day_start_us(start, 0) + last_day * _DAY_US + rng.integers(0, _DAY_US, n)
    history = (last_day - pop.first_day[profile]) + rng.integers(0, 400, n)
    first_seen = last_seen - history * _DAY_US - rng.integers(0, _DAY_US, n)
    update_time = last_seen + rng.integers(0, 6 * _HOUR_US, n)
    return first_seen, last_seen, update_time


def _profile_devices(pop: _Population, profile: np.ndarray) -> pa.Array:
    """DeviceIds: the profile's listed device ordinals are consecutive, so one range covers a batch."""
    lo, hi = pop.device_offset[profile[0]], pop.device_offset[profile[-1] + 1]
    values = _device_ids(np.arange(lo, hi), pop.device_key)
    return _list_array(pop.device_count[profile], values, pop.device_null[profile])


def _visitor_groups(rng: np.random.Generator, n: int) -> pa.Array:
    """0-3 distinct groups: consecutive entries of the vocabulary from a random start."""
    counts = rng.integers(0, 4, n)
    first = np.repeat(rng.integers(0, len(_VISITOR_GROUPS), n), counts)
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return _list_array(counts, _take(_VISITOR_GROUPS, (first + step) % len(_VISITOR_GROUPS)))


def _contact_information(rng: np.random.Generator, n: int) -> pa.Array:
    """0-2 phone numbers per profile."""
    counts = rng.choice(3, n, p=[0.4, 0.45, 0.15])
    numbers = _with_prefix(b"+", _decimal_chars(rng.integers(10**10, 10**11, counts.sum()), 11))
    return _list_array(counts, _fixed_width_strings(numbers))


def _profile_info(pop: _Population, profile: np.ndarray, profile_ids: pa.Array,
                  rng: np.random.Generator) -> pa.Array:
    """Info struct: Email spelt in mixed case/padding (some null), Website, Picture, Country."""
    n = len(profile)
    spelling = rng.choice(len(_PROFILE_EMAIL_P), n, p=_PROFILE_EMAIL_P)
    email = _emails(_email_locals(pop, profile), pop.domain[profile], spelling, rng)
    website = _join("https://", _take(_LAST_ASCII, pop.last[profile]), _number_strings(profile + 1),
                    ".example.net")
    picture = _join("https://cdn.example.com/avatars/", profile_ids, ".jpg")
    return pa.StructArray.from_arrays(
        [_nulls_where(email, ~pop.has_email[profile]), _nulls_where(website, rng.random(n) < 0.7),
         _nulls_where(picture, rng.random(n) < 0.5), _take(_COUNTRIES, pop.country[profile])],
        fields=list(PROFILE_SCHEMA.field("Info").type), mask=pa.array(pop.info_null[profile]))
