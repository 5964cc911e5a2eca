"""Parsing and validation of what is imported: CrossEngage feed lines and Optimizely list items."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

from pipelines.core.email_rules import _ASCII_LABEL
from pipelines.core.errors import InputError
from pipelines.core.identity import MAX_EMAIL_LENGTH, MAX_USER_ID_LENGTH, validate_scope

if TYPE_CHECKING:  # pyarrow loads only where a large list is validated, not per CLI call
    import pyarrow as pa
from pipelines.registry.model import (
    _PLAIN_UUID,
    COMMAND_EVENTS,
    Identity,
    _email,
    _user_id,
    make_identity,
    parse_time,
)

_BAD_LINES_SHOWN = 20


def _bad_lines(errors: Sequence[tuple[int | str, str]], what: str) -> InputError:
    """One message naming every bad line (the first 20 with their reason); `n` is a number or a place."""
    shown = "; ".join(f"{_place(n)}: {msg}" for n, msg in errors[:_BAD_LINES_SHOWN])
    more = f"; and {len(errors) - _BAD_LINES_SHOWN} more" if len(errors) > _BAD_LINES_SHOWN else ""
    lines = ", ".join(str(n) for n, _ in errors[:_BAD_LINES_SHOWN])
    return InputError(f"{what}: {len(errors)} bad line(s) ({lines}{', ...' if more else ''}), nothing imported: "
                      f"{shown}{more}")


def _place(n: int | str) -> str:
    return f"line {n}" if isinstance(n, int) else str(n)


# -- parsing and validation of import lines ------------------------------------------------------
def parse_feed_line(line: Any) -> tuple[Identity, bool, str | None] | None:
    """One CrossEngage feed item -> (identity, blacklisted, at) or None for other events; InputError if bad."""
    if not isinstance(line, dict):
        raise InputError("expected a JSON object")
    event = command_name(line.get("event"))
    if event is None:
        return None
    raw_id: Any = line.get("id")
    raw_email, unit = line.get("email"), line.get("businessUnit")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    for key, value in (("id", raw_id), ("email", raw_email), ("businessUnit", unit)):
        if value is not None and not isinstance(value, str):
            raise InputError(f"'{key}' must be a string")
    if raw_id is None and raw_email is None:
        raise InputError(f"a {event} event needs 'id' or 'email'")
    ident = make_identity(raw_email, raw_id, unit if unit not in (None, "") else None)
    at = line.get("timestamp")
    return ident, COMMAND_EVENTS[event], parse_time(at) if at is not None else None


_PADDING = re.compile(r"^[\s\u200b-\u200d\u2060\ufeff]+|[\s\u200b-\u200d\u2060\ufeff]+$")


def command_name(event: Any) -> str | None:
    """`Blacklisted` / `Whitelisted` for a command event, None for any other event name.

    Padding (Unicode whitespace, zero-width characters, BOM) is trimmed, so `" Blacklisted"` is the
    command: an opt-out must not be lost to a stray space. A case variant (`blacklisted`) is an
    InputError rather than a guess either way (docs/decisions/0232-vendor-api-compatibility.md).
    """
    if not isinstance(event, str):
        raise InputError("'event' must be a string")
    name = _PADDING.sub("", event)
    if name in COMMAND_EVENTS:
        return name
    if name.lower() in {e.lower() for e in COMMAND_EVENTS}:
        raise InputError(f"event names are case-sensitive: use one of {', '.join(COMMAND_EVENTS)}")
    return None


def _optimizely_items(doc: Any) -> list[Any]:
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise InputError("Optimizely list: expected an object with an 'items' array")
    items = doc["items"]
    count = doc.get("count")
    if count is not None and count != len(items):
        raise InputError(f"Optimizely list: 'count' is {count} but there are {len(items)} items (truncated file?)")
    return items


def _not_a_string(item: dict) -> str:
    key = next(k for k in ("Email", "UserId", "Scope", "BlacklistId")
               if item.get(k) is not None and type(item[k]) is not str)
    return f"'{key}' must be a string"


_FAST_MIN = 10_000


def validate_items(items: Sequence[Any]) -> tuple[list[Identity], list[str | None], list[tuple[int, str]]]:
    """Validate every item of an Optimizely list: (identities, ids, errors). Large lists of ordinary
    items take a columnar path (`_validated_columns`) with exactly the same result; any item it does
    not vouch for sends the whole list through the item-by-item loop, which also words the errors."""
    fast = _validated_columns(items) if len(items) >= _FAST_MIN else None
    return (*fast, []) if fast is not None else _validate_items(items)


def _column(items: Sequence[dict], key: str) -> list[Any] | None:
    """`item.get(key)` of every item, or None unless each is a string or absent."""
    values = [item.get(key) for item in items]
    return values if set(map(type, values)) <= {str, type(None)} else None


def _validated_columns(items: Sequence[Any]) -> tuple[list[Identity], list[str | None]] | None:
    """`_validate_items` by columns, for lists without a single bad item; None where it cannot vouch."""
    if set(map(type, items)) != {dict}:
        return None
    emails, user_ids = _column(items, "Email"), _column(items, "UserId")
    scopes, ids = _column(items, "Scope"), _column(items, "BlacklistId")
    if emails is None or user_ids is None or scopes is None or ids is None:
        return None
    if any(user_ids[i] is None for i, email in enumerate(emails) if email is None):
        return None  # an item without email or user id
    given = [bid for bid in ids if bid is not None]
    if not all(map(_PLAIN_UUID.fullmatch, given)) or len(set(given)) != len(given):
        return None
    try:
        valid: dict[str | None, str | None] = {s: validate_scope(s) for s in set(scopes) if s is not None}
        emails = _plain_column(emails, _email, _plain_emails)
        user_ids = _plain_column(user_ids, _user_id, _plain_user_ids)
    except InputError:
        return None
    valid[None] = None
    # `tuple.__new__` in C: the named tuple's own `__new__` is a Python function (1 µs an item)
    rows = zip(emails, user_ids, map(valid.__getitem__, scopes), strict=True)
    return list(map(tuple.__new__, repeat(Identity), rows)), ids


def _plain_column(values: list[str | None], one: Any, plain: Any) -> list[str | None]:
    """Normalise a column: `plain` (Arrow) where it vouches for a value, `one` (the per-item rule) elsewhere."""
    import pyarrow as pa

    array = pa.array(values, pa.string())
    normalised, ok = plain(array)
    import pyarrow.compute as pc

    out = normalised.to_pylist()
    for i in pc.indices_nonzero(pc.invert(ok)).to_pylist():
        out[i] = one(values[i])
    return out


# `_email`'s shortcut by columns (RE2 has no look-ahead: the top-level label's letter is a second test).
_PLAIN_SHAPE = rf"^[!-?A-~]+@(?:{_ASCII_LABEL}\.)+{_ASCII_LABEL}$"
_LETTER_IN_LAST_LABEL = r"[a-z][a-z0-9-]*$"


def _plain_emails(array: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(stripped and lower-cased, True where `is_plain_email` holds for that) per value, for ASCII values."""
    import pyarrow.compute as pc

    email = pc.ascii_lower(pc.utf8_trim(array, " "))
    ok = pc.and_(pc.and_(pc.string_is_ascii(array), pc.less_equal(pc.utf8_length(email), MAX_EMAIL_LENGTH)),
                 pc.and_(pc.invert(pc.match_substring(email, "xn--")), pc.match_substring_regex(email, _PLAIN_SHAPE)))
    ok = pc.and_(pc.and_(ok, pc.match_substring_regex(email, _LETTER_IN_LAST_LABEL)),
                 pc.invert(pc.match_substring_regex(email, "@.{254}")))
    return email, pc.fill_null(ok, True)  # null where the value is: stays None


def _plain_user_ids(array: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(stripped, True where `_user_id`'s printable-ASCII shortcut holds) per value."""
    import pyarrow.compute as pc

    user_id = pc.utf8_trim(array, " ")
    length = pc.utf8_length(user_id)
    ok = pc.and_(pc.and_(pc.greater(length, 0), pc.less_equal(length, MAX_USER_ID_LENGTH)),
                 pc.and_(pc.string_is_ascii(user_id), pc.match_substring_regex(user_id, r"^[ -~]*$")))
    return user_id, pc.fill_null(ok, True)


def _validate_items(items: Sequence[Any]) -> tuple[list[Identity], list[str | None], list[tuple[int, str]]]:
    """Validate every item (the loop is kept tight: it runs 10M times on a bulk import)."""
    idents: list[Identity] = []
    ids: list[str | None] = []
    errors: list[tuple[int, str]] = []
    seen_ids: dict[str, int] = {}
    scopes: dict[str, str] = {}
    for n, item in enumerate(items, start=1):
        try:
            if type(item) is not dict:
                raise InputError("expected an object")
            get = item.get
            email, user_id, scope, bid = get("Email"), get("UserId"), get("Scope"), get("BlacklistId")
            if not ((email is None or type(email) is str) and (user_id is None or type(user_id) is str)
                    and (scope is None or type(scope) is str) and (bid is None or type(bid) is str)):
                raise InputError(_not_a_string(item))
            if bid is not None:
                if not _PLAIN_UUID.fullmatch(bid):
                    try:
                        bid = str(uuid.UUID(bid))
                    except ValueError:
                        raise InputError("'BlacklistId' must be a UUID") from None
                if bid in seen_ids:
                    raise InputError(f"'BlacklistId' repeats line {seen_ids[bid]}")
                seen_ids[bid] = n
            if email is None and user_id is None:
                raise InputError("an entry needs an email or a user id (or both)")
            if scope is not None:
                scope = scopes.get(scope) or scopes.setdefault(scope, validate_scope(scope))
            idents.append(Identity(_email(email) if email is not None else None,
                                   _user_id(user_id) if user_id is not None else None, scope))
            ids.append(bid)
        except InputError as exc:
            errors.append((n, str(exc)))
    return idents, ids, errors
