"""Parsing and validation of what is imported: CrossEngage feed lines and Optimizely list items."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pipelines.core.errors import InputError
from pipelines.core.identity import (
    validate_scope,
)

if TYPE_CHECKING:  # numpy, pyarrow and DuckDB load only where a snapshot is built, not per CLI call

    pass
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
