"""Vectorised string, timestamp and list building for the sample data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.sample.population import _HEX, _at, _Population
from pipelines.sample.vocab import (
    _DEVICE_MULT,
    _DOMAIN_FORMS,
    _EMAIL_DOMAIN_FORM,
    _EMAIL_LOCAL_FORM,
    _EMAIL_PADDED,
    _FIRST_ASCII,
    _FIRST_DISPLAY,
    _LAST_ASCII,
    _LAST_DISPLAY,
    _MASK48,
    _NAMES_FIRST,
    _NAMES_LAST,
    _PADS_LEFT,
    _PADS_RIGHT,
    _TS,
    DOMAINS,
)


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
