"""Sample events: one file per day, planned in time order and written a row group at a time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.sample.files import _atomic_parquet
from pipelines.sample.population import _at, _child_rng, _Population
from pipelines.sample.strings import (
    _decimal_chars,
    _decimals,
    _device_ids,
    _email_locals,
    _emails,
    _fixed_width_strings,
    _ipv4,
    _join,
    _list_array,
    _names,
    _nulls_where,
    _number_strings,
    _take,
    _timestamps,
    _user_ids,
    _with_prefix,
)
from pipelines.sample.vocab import (
    _ADD_TO_CART,
    _ANONYMOUS_SHARE,
    _COUNTRIES,
    _DAY_US,
    _EVENT_EMAIL_P,
    _EVENT_SCOPE_VARIANT_SHARE,
    _EVENT_TYPE_P,
    _EVENT_TYPES,
    _EXTRA_DEVICE_USE,
    _FOREIGN,
    _FROM_PROFILE,
    _NULL_DEVICE_SHARE,
    _PATH_PREFIX,
    _PROFILE_SCOPE_P,
    _PURCHASE,
    _SCOPE_VARIANT,
    _SCOPES,
    _SESSION_FROM_US,
    _SESSION_SD_US,
    _SESSION_TO_US,
    _SITE,
    _SOURCE_P,
    _STRANGER,
    _STRANGER_NULL_DEVICE,
    _STREAM_DAY,
    _STREAM_EVENT_BATCH,
    _UNKNOWN_DEVICE_SPAN,
    _VALUE_PREFIX,
    COUNTRIES,
    DOMAINS,
    EVENT_BATCH_ROWS,
    EVENT_SCHEMA,
)


@dataclass(frozen=True)
class _DayPlan:
    """One day's events in time order: microseconds into the day, profile (-1: none), source."""

    time: np.ndarray
    profile: np.ndarray
    source: np.ndarray


def _write_event_day(path: Path, pop: _Population, day: int, count: int, seed: int, day_start: int) -> None:
    """Plan one day's events and write them, EVENT_BATCH_ROWS rows per row group."""
    plan = _plan_day(pop, day, count, _child_rng(seed, _STREAM_DAY, day))
    with _atomic_parquet(path, EVENT_SCHEMA) as writer:
        for batch, lo in enumerate(range(0, count, EVENT_BATCH_ROWS)):
            rows = slice(lo, min(lo + EVENT_BATCH_ROWS, count))
            rng = _child_rng(seed, _STREAM_EVENT_BATCH, day, batch)
            table = _events_table(pop, plan.time[rows] + day_start, plan.profile[rows], plan.source[rows], rng)
            writer.write_table(table, row_group_size=table.num_rows)


def _plan_day(pop: _Population, day: int, count: int, rng: np.random.Generator) -> _DayPlan:
    """Pick each event's source and profile; a profile's events cluster around one session time."""
    active = pop.pair_profile[pop.day_offsets[day]:pop.day_offsets[day + 1]]
    source = rng.choice(len(_SOURCE_P), count, p=_SOURCE_P).astype(np.int8)
    if active.size == 0:
        source[source == _FROM_PROFILE] = _STRANGER
    time = rng.integers(0, _DAY_US, count)
    profile = np.full(count, -1, dtype=np.int32)
    rows = np.flatnonzero(source == _FROM_PROFILE)
    if rows.size:
        cumulative = np.cumsum(pop.weight[active])
        pick = np.searchsorted(cumulative, rng.random(rows.size) * cumulative[-1], side="right")
        pick = np.minimum(pick, active.size - 1)
        session = rng.integers(_SESSION_FROM_US, _SESSION_TO_US, active.size)
        spread = rng.normal(0.0, _SESSION_SD_US, rows.size).astype(np.int64)
        profile[rows] = active[pick]
        time[rows] = np.clip(session[pick] + spread, 0, _DAY_US - 1)
    order = np.argsort(time, kind="stable")
    return _DayPlan(time=time[order], profile=profile[order], source=source[order])


@dataclass(frozen=True)
class _Identities:
    """Who each event row shows: device ordinal (-1: null) and which user struct it carries."""

    device: np.ndarray
    identified: np.ndarray  # user struct of the row's profile
    foreign: np.ndarray     # user struct with an email of no profile


def _event_identities(pop: _Population, p: np.ndarray, from_profile: np.ndarray, source: np.ndarray,
                      rng: np.random.Generator) -> _Identities:
    """Pick each row's device and user struct.

    A profile's row is anonymous (User null) on one of its listed devices, or identified: its user
    struct, usually with a listed device, sometimes its events-only device, rarely none. Strangers
    and foreign emails use unknown devices (or none).
    """
    n = len(p)
    count = np.where(from_profile, _at(pop.device_count, p), 0)
    extra = np.where(from_profile, _at(pop.extra_device, p), -1)
    has_identity = from_profile & (_at(pop.has_email, p) | _at(pop.has_user, p))
    anonymous = (count > 0) & ((rng.random(n) < _ANONYMOUS_SHARE) | ~has_identity)
    identified = has_identity & ~anonymous
    lonely = from_profile & ~anonymous & ~identified  # no identity and no listed device

    listed = _at(pop.device_offset, p) + (rng.random(n) * np.maximum(count, 1)).astype(np.int64)
    unknown = pop.unknown_base + rng.integers(0, _UNKNOWN_DEVICE_SPAN, n)
    unknown = np.where(rng.random(n) < _STRANGER_NULL_DEVICE, -1, unknown)
    choice = rng.random(n)
    use_extra = (extra >= 0) & ((choice < _EXTRA_DEVICE_USE) | (count == 0))
    use_listed = (count > 0) & (choice < 1 - _NULL_DEVICE_SHARE)
    device = np.select(
        [anonymous, identified & use_extra, identified & use_listed, identified, lonely & (extra >= 0)],
        [listed, extra, listed, -1, extra],
        default=unknown,
    )
    return _Identities(device=device, identified=identified, foreign=source == _FOREIGN)


def _events_table(pop: _Population, time: np.ndarray, profile: np.ndarray, source: np.ndarray,
                  rng: np.random.Generator) -> pa.Table:
    """One batch of event rows."""
    n = len(time)
    from_profile = source == _FROM_PROFILE
    p = np.where(from_profile, profile, 0)
    who = _event_identities(pop, p, from_profile, source, rng)
    event_type = rng.choice(len(_EVENT_TYPE_P), n, p=_EVENT_TYPE_P)
    number = _number_strings(rng.integers(0, 100_000, n))
    country = np.where(from_profile & (rng.random(n) < 0.9), _at(pop.country, p),
                       rng.integers(0, len(COUNTRIES), n))
    columns = {
        "DeviceId": _nulls_where(_device_ids(np.maximum(who.device, 0), pop.device_key), who.device < 0),
        "EventType": _take(_EVENT_TYPES, event_type),
        "Value": _join(_take(_VALUE_PREFIX, event_type), number),
        "PageUri": _join(_SITE, _take(_PATH_PREFIX, event_type), number),
        "RemoteAddress": _ipv4(_event_addresses(pop, p, from_profile, rng)),
        "EventTime": _timestamps(time),
        "CountryCode": _take(_COUNTRIES, country),
        "Scope": _take(_SCOPES, _event_scopes(pop, p, from_profile, rng)),
        "User": _event_users(pop, p, who, country, rng),
        "Payload": _event_payload(event_type, rng),
    }
    return pa.Table.from_arrays(list(columns.values()), schema=EVENT_SCHEMA)


def _event_addresses(pop: _Population, p: np.ndarray, from_profile: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """A profile's usual address (last octet varying now and then); random for everyone else."""
    n = len(p)
    usual = _at(pop.ip, p).astype(np.int64)
    usual = np.where(rng.random(n) < 0.2, (usual & ~0xFF) | rng.integers(0, 256, n), usual)
    return np.where(from_profile, usual, rng.integers(0, 1 << 32, n))


def _event_scopes(pop: _Population, p: np.ndarray, from_profile: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """The profile's scope, now and then in another spelling of it; strangers draw one."""
    n = len(p)
    drawn = rng.choice(len(_PROFILE_SCOPE_P), n, p=_PROFILE_SCOPE_P).astype(np.int8)
    scope = np.where(from_profile, _at(pop.scope, p), drawn)
    return np.where(rng.random(n) < _EVENT_SCOPE_VARIANT_SHARE, _SCOPE_VARIANT[scope], scope)


def _event_users(pop: _Population, p: np.ndarray, who: _Identities, country: np.ndarray,
                 rng: np.random.Generator) -> pa.Array:
    """User struct: the profile's name, email (spelt per event) and UserId; a guest's for foreign
    emails; null for anonymous rows."""
    n = len(p)
    foreign = pa.array(who.foreign)
    guest = _join("guest.", _number_strings(rng.integers(0, 10**6, n)))
    local = pc.if_else(foreign, guest, _email_locals(pop, p))
    domain = np.where(who.foreign, rng.integers(0, len(DOMAINS), n), _at(pop.domain, p))
    spelling = rng.choice(len(_EVENT_EMAIL_P), n, p=_EVENT_EMAIL_P)
    email = _nulls_where(_emails(local, domain, spelling, rng), who.identified & ~_at(pop.has_email, p))
    user_id = _nulls_where(_user_ids(p, pop.size), who.foreign | ~_at(pop.has_user, p))
    name = pc.if_else(foreign, pa.scalar("Guest"), _names(pop, p))
    info = pa.StructArray.from_arrays([_take(_COUNTRIES, country)], names=["Country"])
    return pa.StructArray.from_arrays([name, email, user_id, info], fields=list(EVENT_SCHEMA.field("User").type),
                                      mask=pa.array(~(who.identified | who.foreign)))


def _event_payload(event_type: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """Amount for purchases and cart additions; 1-4 SKUs in Items for those, none otherwise."""
    n = len(event_type)
    purchase, cart = event_type == _PURCHASE, event_type == _ADD_TO_CART
    amount = _nulls_where(_decimals(rng.integers(500, 50_000, n), pa.decimal128(12, 2)), ~(purchase | cart))
    counts = np.where(purchase, rng.integers(1, 5, n), cart.astype(np.int64))
    skus = _fixed_width_strings(_with_prefix(b"sku-", _decimal_chars(rng.integers(0, 100_000, counts.sum()), 5)))
    return pa.StructArray.from_arrays([amount, _list_array(counts, skus)],
                                      fields=list(EVENT_SCHEMA.field("Payload").type))
