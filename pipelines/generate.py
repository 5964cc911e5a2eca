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

import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

PROFILES_PER_FILE = 250_000
PROFILE_BATCH_ROWS = 65_536
"""Profiles built and written per row group."""
EVENT_BATCH_ROWS = 131_072
"""Events built and written per row group."""

_WRITER_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "version": "2.6",
    "data_page_version": "1.0",
    "use_dictionary": True,
    "write_statistics": True,
}

# ---------------------------------------------------------------------------------------------
# Schemas (Optimizely shapes).

_TS = pa.timestamp("us", tz="UTC")
PROFILE_SCHEMA = pa.schema([
    ("ProfileId", pa.string()),
    ("UserId", pa.string()),
    ("DeviceIds", pa.list_(pa.string())),
    ("Name", pa.string()),
    ("Scope", pa.string()),
    ("FirstSeen", _TS),
    ("LastSeen", _TS),
    ("UpdateTime", _TS),
    ("Visits", pa.int32()),
    ("VisitorGroups", pa.list_(pa.string())),
    ("Info", pa.struct([("Email", pa.string()), ("Website", pa.string()), ("Picture", pa.string()),
                        ("Country", pa.string())])),
    ("ContactInformation", pa.list_(pa.string())),
    ("Payload", pa.struct([("Segment", pa.string()), ("Score", pa.decimal128(10, 2))])),
])
EVENT_SCHEMA = pa.schema([
    ("DeviceId", pa.string()),
    ("EventType", pa.string()),
    ("Value", pa.string()),
    ("PageUri", pa.string()),
    ("RemoteAddress", pa.string()),
    ("EventTime", _TS),
    ("CountryCode", pa.string()),
    ("Scope", pa.string()),
    ("User", pa.struct([("Name", pa.string()), ("Email", pa.string()), ("UserId", pa.string()),
                        ("Info", pa.struct([("Country", pa.string())]))])),
    ("Payload", pa.struct([("Amount", pa.decimal128(12, 2)), ("Items", pa.list_(pa.string()))])),
])

# ---------------------------------------------------------------------------------------------
# Vocabularies and shares.

_NAMES_FIRST = [("Anna", "anna"), ("Erik", "erik"), ("Åsa", "asa"), ("Jörg", "jorg"), ("Maria", "maria"),
                ("Lars", "lars"), ("Sofia", "sofia"), ("Jonas", "jonas"), ("Zoë", "zoe"), ("Liam", "liam"),
                ("Emma", "emma"), ("Noah", "noah"), ("Ingrid", "ingrid"), ("Pierre", "pierre"),
                ("Chloé", "chloe"), ("Mateusz", "mateusz"), ("Aino", "aino"), ("Oskar", "oskar"),
                ("Freya", "freya"), ("Hugo", "hugo"), ("Nora", "nora"), ("Finn", "finn")]
_NAMES_LAST = [("Berg", "berg"), ("Lindqvist", "lindqvist"), ("Müller", "muller"), ("Nielsen", "nielsen"),
               ("Jansen", "jansen"), ("Smith", "smith"), ("Dubois", "dubois"), ("Kowalski", "kowalski"),
               ("Virtanen", "virtanen"), ("Andersson", "andersson"), ("Öberg", "oberg"), ("Hansen", "hansen"),
               ("Schmidt", "schmidt"), ("Brown", "brown"), ("Martin", "martin"), ("Nowak", "nowak"),
               ("Korhonen", "korhonen"), ("de Vries", "devries"), ("Larsen", "larsen"), ("Fischer", "fischer")]
_FIRST_DISPLAY = pa.array([d for d, _ in _NAMES_FIRST])
_FIRST_ASCII = pa.array([a for _, a in _NAMES_FIRST])
_LAST_DISPLAY = pa.array([d for d, _ in _NAMES_LAST])
_LAST_ASCII = pa.array([a for _, a in _NAMES_LAST])

DOMAINS = ("example.com", "mail.example.org", "inbox.test", "post.example.net", "webmail.test")
_DOMAIN_FORMS = pa.array([form for d in DOMAINS for form in (
    d,
    ".".join(label.capitalize() for label in d.split(".")),
    ".".join(label.capitalize() for label in d.split(".")[:-1]) + "." + d.split(".")[-1].upper(),
    d.upper(),
)])
"""Four spellings per domain: lower, Title.Case, Title.UPPER-TLD, UPPER."""

# Email spellings: (local part form: 0 lower, 1 Title, 2 UPPER; domain form; padded with spaces).
_EMAIL_LOCAL_FORM = np.array([0, 1, 1, 2, 0, 1, 2], dtype=np.int8)
_EMAIL_DOMAIN_FORM = np.array([0, 1, 2, 3, 0, 2, 3], dtype=np.int64)
_EMAIL_PADDED = np.array([False, False, False, False, True, True, True])
_PROFILE_EMAIL_P = [0.30, 0.25, 0.15, 0.05, 0.10, 0.10, 0.05]
_EVENT_EMAIL_P = [0.40, 0.10, 0.10, 0.25, 0.05, 0.05, 0.05]
_PADS_LEFT = pa.array(["  ", " ", ""])
_PADS_RIGHT = pa.array([" ", "", "  "])

COUNTRIES = ("SE", "NO", "DK", "FI", "DE", "NL", "GB", "FR", "PL", "US")
_COUNTRIES = pa.array(COUNTRIES)

SCOPES = (None, "", "  ", "DefaultScope", "commercesite", "CommerceSite", "outlet",
          "COMMERCESITE", "OUTLET", "defaultscope")
"""Scope spellings; profiles use the first seven, events also the case variants after them."""
_SCOPES = pa.array(SCOPES, pa.string())
_PROFILE_SCOPE_P = [0.12, 0.05, 0.03, 0.15, 0.30, 0.15, 0.20]
_SCOPE_VARIANT = np.array([1, 0, 1, 9, 7, 4, 8, 4, 6, 3], dtype=np.int8)
"""Another spelling of the same scope (same comparison key): None <-> "", "commercesite" -> "COMMERCESITE"."""
_COMMERCESITE_CODES = (4, 5)
_EVENT_SCOPE_VARIANT_SHARE = 0.15

EVENT_TYPES = ("pageview", "click", "search", "add_to_cart", "purchase", "login", "signup")
_EVENT_TYPES = pa.array(EVENT_TYPES)
_EVENT_TYPE_P = [0.55, 0.18, 0.08, 0.08, 0.05, 0.04, 0.02]
_PURCHASE, _ADD_TO_CART = EVENT_TYPES.index("purchase"), EVENT_TYPES.index("add_to_cart")
_VALUE_PREFIX = pa.array(["product-", "button-", "query-", "sku-", "order-", "session-", "session-"])
_PATH_PREFIX = pa.array(["/products/", "/products/", "/search?q=term", "/cart?add=sku-",
                         "/checkout/confirmation/", "/account/login?s=", "/account/signup?s="])
_SITE = "https://shop.example.com"

_VISITOR_GROUPS = pa.array(["returning", "newsletter", "vip", "mobile", "b2b", "cart-abandoner", "outlet"])
_SEGMENTS = pa.array(["bronze", "silver", "gold", "platinum"])
_SEGMENT_P = [0.5, 0.3, 0.15, 0.05]

_LEAD_SHARE = 0.20            # profiles without UserId
_INFO_NULL_SHARE = 0.02       # profiles whose Info struct is null
_EMAIL_NULL_SHARE = 0.03      # profiles whose Info.Email is null
_DEVICE_COUNT_P = [0.15, 0.45, 0.28, 0.12]  # 0-3 listed devices
_DEVICE_IDS_NULL_SHARE = 0.02
_EXTRA_DEVICE_SHARE = 0.25    # profiles with listed devices that also use one seen only in events
_EXTRA_DEVICE_SHARE_UNLISTED = 0.80  # the same, for profiles without listed devices
_MAX_ACTIVE_DAYS = 5

# Event sources (per planned event): a profile's event, a stranger (no user, unknown or no device),
# or a foreign email (a user struct whose email belongs to no profile).
_FROM_PROFILE, _STRANGER, _FOREIGN = 0, 1, 2
_SOURCE_P = [0.945, 0.05, 0.005]
_ANONYMOUS_SHARE = 0.30       # of a profile's events with a listed device: User null
_EXTRA_DEVICE_USE = 0.20      # identified events on the profile's events-only device
_NULL_DEVICE_SHARE = 0.03     # identified events without DeviceId
_STRANGER_NULL_DEVICE = 0.20
_HOUR_US = 3600 * 1_000_000
_SESSION_SD_US = _HOUR_US * 25 // 60
_SESSION_FROM_US, _SESSION_TO_US = 2 * _HOUR_US, 22 * _HOUR_US  # session centres, into the day

_DAY_US = 86_400 * 1_000_000
_EPOCH = date(1970, 1, 1)
_MASK48 = np.uint64((1 << 48) - 1)
_DEVICE_MULT = np.uint64(0x5DEECE66D)  # odd: k -> k * MULT + key is a bijection modulo 2**48
_UNKNOWN_DEVICE_SPAN = 1 << 40

# Stream tags keep the seeded generators apart. SeedSequence pads entropy with zeros, so tags are
# non-zero and sit in a fixed position.
_STREAM_PROFILES, _STREAM_DAY, _STREAM_EVENT_BATCH = 1, 2, 3

_PROFILE_FILE_RE = re.compile(r"profiles-\d{4,}\.parquet")
_EVENT_FILE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\.parquet")


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


def _fixed_width_strings(chars: np.ndarray) -> pa.Array:
    """Arrow strings from an (n, width) matrix of ASCII codes, one string per row."""
    n, width = chars.shape
    data = np.ascontiguousarray(chars, dtype=np.uint8).reshape(-1)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _with_prefix(prefix: bytes, chars: np.ndarray) -> np.ndarray:
    head = np.broadcast_to(np.frombuffer(prefix, dtype=np.uint8), (len(chars), len(prefix)))
    return np.hstack([head, chars])


def _hex_chars(values: np.ndarray, width: int) -> np.ndarray:
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    return _HEX[(values.astype(np.uint64)[:, None] >> shifts) & np.uint64(0xF)]


def _decimal_chars(values: np.ndarray, width: int) -> np.ndarray:
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values.astype(np.int64)[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


def _join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate strings element-wise (arrays and scalars)."""
    return pc.binary_join_element_wise(*parts, "")


def _number_strings(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype(np.int64)).cast(pa.string())


def _take(vocabulary: pa.Array, index: np.ndarray) -> pa.Array:
    return vocabulary.take(pa.array(np.asarray(index, dtype=np.int64)))


def _nulls_where(values: pa.Array, null: np.ndarray) -> pa.Array:
    if not null.any():
        return values
    return pc.if_else(pa.array(~null), values, pa.scalar(None, values.type))


def _timestamps(micros: np.ndarray) -> pa.Array:
    return pa.array(micros.astype(np.int64), type=_TS)


def _decimals(cents: np.ndarray, dtype: pa.Decimal128Type) -> pa.Array:
    """Decimal values from integer hundredths (same 16-byte layout, scale 2)."""
    return pa.array(cents.astype(np.int64)).cast(pa.decimal128(19, 0)).view(dtype)


def _list_array(counts: np.ndarray, values: pa.Array, null: np.ndarray | None = None) -> pa.Array:
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    mask = pa.array(null) if null is not None and null.any() else None
    return pa.ListArray.from_arrays(offsets, values, type=pa.list_(pa.string()), mask=mask)


def _device_ids(ordinals: np.ndarray, key: np.uint64) -> pa.Array:
    """`d-<12 hex>` ids; distinct ordinals (below 2**48) give distinct ids."""
    scrambled = (ordinals.astype(np.uint64) * _DEVICE_MULT + key) & _MASK48
    return _fixed_width_strings(_with_prefix(b"d-", _hex_chars(scrambled, 12)))


def _user_ids(profile: np.ndarray, n_profiles: int) -> pa.Array:
    """`u0000123`: the profile's number (index + 1), zero-padded to at least 7 digits."""
    width = max(7, len(str(n_profiles)))
    return _fixed_width_strings(_with_prefix(b"u", _decimal_chars(profile + 1, width)))


def _profile_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """Random version-4 UUID strings."""
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2], nibbles[:, 1::2] = raw >> 4, raw & 0x0F
    return _fixed_width_strings(np.insert(_HEX[nibbles], [8, 12, 16, 20], ord("-"), axis=1))


def _email_locals(pop: _Population, profile: np.ndarray) -> pa.Array:
    """Lower-case local parts `first.last<number>`, unique per profile."""
    return _join(_take(_FIRST_ASCII, _at(pop.first, profile)), ".", _take(_LAST_ASCII, _at(pop.last, profile)),
                 _number_strings(profile + 1))


def _emails(local: pa.Array, domain: np.ndarray, spelling: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """Emails from lower-case local parts and domains, spelt per `spelling` (case and padding)."""
    local = pc.choose(pa.array(_EMAIL_LOCAL_FORM[spelling]), local, pc.utf8_title(local), pc.utf8_upper(local))
    email = _join(local, "@", _take(_DOMAIN_FORMS, domain * 4 + _EMAIL_DOMAIN_FORM[spelling]))
    padded = _EMAIL_PADDED[spelling]
    if padded.any():
        pad = rng.integers(0, len(_PADS_LEFT), len(spelling))
        email = pc.if_else(pa.array(padded), _join(_take(_PADS_LEFT, pad), email, _take(_PADS_RIGHT, pad)), email)
    return email


def _normalized_email(pop: _Population, profile: int) -> str:
    """The stored (trimmed, lower-case) email of one profile, as the blacklist writes it."""
    first, last = _NAMES_FIRST[pop.first[profile]][1], _NAMES_LAST[pop.last[profile]][1]
    return f"{first}.{last}{profile + 1}@{DOMAINS[pop.domain[profile]]}"


def _names(pop: _Population, profile: np.ndarray) -> pa.Array:
    return _join(_take(_FIRST_DISPLAY, _at(pop.first, profile)), " ", _take(_LAST_DISPLAY, _at(pop.last, profile)))


def _ipv4(address: np.ndarray) -> pa.Array:
    """Dotted IPv4 strings; the first octet is kept in 1-223 (unicast)."""
    address = address.astype(np.int64)
    octets = [1 + (address >> 24) % 223, (address >> 16) & 255, (address >> 8) & 255, address & 255]
    return pc.binary_join_element_wise(*[_number_strings(o) for o in octets], ".")


# ---------------------------------------------------------------------------------------------
# Profiles.


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


# ---------------------------------------------------------------------------------------------
# Events: planned per day (time, profile, source), built and written per row group.


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


# ---------------------------------------------------------------------------------------------
# Blacklist sample.


def _blacklist_items(rng: np.random.Generator, pop: _Population, count: int) -> list[dict[str, Any]]:
    """About half unscoped emails, the rest scoped to `commercesite` except one UserId-only entry.

    Picks profiles that have an email (or a UserId) and a listed device, so linking matters.
    Unscoped entries alternate between an omitted Scope and an explicit null.
    """
    unscoped = (count + 1) // 2
    by_user_id = 1 if count >= 2 else 0
    scoped = count - unscoped - by_user_id
    with_device = pop.device_count > 0
    commercesite = np.isin(pop.scope, _COMMERCESITE_CODES)
    taken: set[int] = set()
    picks = {
        "scoped": _pick(rng, np.flatnonzero(pop.has_email & with_device & commercesite), scoped, taken),
        "unscoped": _pick(rng, np.flatnonzero(pop.has_email & with_device), unscoped, taken),
        "user_id": _pick(rng, np.flatnonzero(pop.has_user & with_device), by_user_id, taken),
    }
    items: list[dict[str, Any]] = []
    for i, profile in enumerate(picks["unscoped"]):
        item: dict[str, Any] = {"Email": _normalized_email(pop, profile)}
        if i % 2:
            item["Scope"] = None
        items.append(item)
    items += [{"Email": _normalized_email(pop, p), "Scope": "commercesite"} for p in picks["scoped"]]
    width = max(7, len(str(pop.size)))
    items += [{"UserId": f"u{p + 1:0{width}d}"} for p in picks["user_id"]]
    return items


def _pick(rng: np.random.Generator, pool: np.ndarray, count: int, taken: set[int]) -> list[int]:
    """`count` distinct profiles from `pool`, none already taken; ValueError if too few."""
    pool = pool[~np.isin(pool, sorted(taken))]
    if len(pool) < count:
        raise ValueError(f"not enough suitable profiles for a blacklist sample of this size "
                         f"(need {count} more, found {len(pool)}); generate more profiles")
    chosen = [int(p) for p in rng.choice(pool, count, replace=False)] if count else []
    taken.update(chosen)
    return chosen


# ---------------------------------------------------------------------------------------------
# Atomic file output.


@contextmanager
def _atomic_parquet(path: Path, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
    """A Parquet writer on a hidden temporary file that replaces `path` when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with pq.ParquetWriter(tmp, schema, **_WRITER_OPTIONS) as writer:
            yield writer
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_stale(folder: Path, pattern: re.Pattern[str], keep: Sequence[Path]) -> None:
    """Delete generator-named files in `folder` that this run did not write."""
    kept = {p.name for p in keep}
    for path in folder.iterdir():
        if pattern.fullmatch(path.name) and path.name not in kept and path.is_file():
            path.unlink()
