"""Communication suppression (§4, CrossEngage: no communication at all, not even transactional).

`split_recipients` divides an outgoing message or audience table into the rows that may be sent and
the rows that fail, by the identity rules of docs/spec.md §2: the one normalisation for emails, user
ids and scopes, scopes case-insensitive with null or blank scopes in `DefaultScope`, and an entry
without a scope covering every scope. The email column holds recipient fields as mail systems write
them (`Anna <anna@example.com>`, `mailto:` URIs, several recipients, groups: `pipelines/core/recipients.py`):
a row fails with the reason `blacklisted` when any of its recipients is blacklisted, and with the
reason `unparseable` when its field cannot be read as addresses (never allowed on a guess).
`suppression_list` is the list an email service provider imports: normalized emails or their SHA-256.
Tables in, tables out; reading and writing files is the caller's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core.errors import SchemaError
from pipelines.core.identity import data_scope_key, id_key, scope_key
from pipelines.core.model import Entry
from pipelines.core.recipients import recipient_addresses

REASON = "blacklisted"
UNPARSEABLE = "unparseable"
REASONS = (REASON, UNPARSEABLE)
_SEP = "\x1f"  # joins an identity and a scope into one key; cannot occur in a valid email or scope


@dataclass(frozen=True)
class RecipientColumns:
    """Which columns of the outgoing file identify the recipient (at least one of email / user id)."""

    email: str | None = None
    user_id: str | None = None
    scope: str | None = None
    """A column with each row's scope; without one, every row is in `scope` below."""
    default_scope: str | None = None
    """The scope of rows with no scope column (e.g. the business unit sending); None is `DefaultScope`."""


@dataclass(frozen=True)
class Suppression:
    """The split. Rows in = allowed + failed, checked on creation."""

    allowed: pa.Table
    failed: pa.Table
    rows_in: int
    reason_column: str
    by_reason: dict[str, int] = field(default_factory=dict)
    """Failed rows per reason (`blacklisted`, `unparseable`); each row counted once."""

    def __post_init__(self) -> None:
        if self.rows_in != self.allowed.num_rows + self.failed.num_rows:
            raise AssertionError(f"suppression: rows in {self.rows_in} != allowed {self.allowed.num_rows} "
                                 f"+ failed {self.failed.num_rows}")


def find_recipient_columns(schema: pa.Schema, email: str | None, user_id: str | None,
                           scope: str | None, default_scope: str | None, where: str) -> RecipientColumns:
    """Check the named columns exist with usable types; without email and user id, use a column
    named `email` (any case)."""
    if email is None and user_id is None:
        email = next((n for n in schema.names if n.lower() == "email"), None)
        if email is None:
            raise SchemaError(f"{where}: no 'email' column; name the recipient columns with "
                              "--email-column and/or --user-id-column")
    for role, name in (("email", email), ("user id", user_id), ("scope", scope)):
        if name is None:
            continue
        if name not in schema.names:
            raise SchemaError(f"{where}: column {name!r} ({role}) is missing; columns are {schema.names}")
        t = schema.field(name).type
        ok = pa.types.is_string(t) or pa.types.is_large_string(t) or (role == "user id" and pa.types.is_integer(t))
        if not ok:
            raise SchemaError(f"{where}: column {name!r} ({role}) has type {t}, expected text")
    return RecipientColumns(email, user_id, scope, default_scope)


def _text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.cast(column, pa.string())


def _keys(column: pa.ChunkedArray, key) -> pa.ChunkedArray:
    """The one normalisation (pipelines/core/identity.py) applied to each value."""
    return pa.chunked_array([pa.array([key(v) for v in _text(column).to_pylist()], pa.string())])


def _row_scopes(table: pa.Table, cols: RecipientColumns) -> pa.ChunkedArray:
    if cols.scope is None:
        return pa.chunked_array([pa.array([data_scope_key(cols.default_scope)] * table.num_rows, pa.string())])
    return _keys(table[cols.scope], data_scope_key)


def _hits(values: pa.ChunkedArray, scopes: pa.ChunkedArray, unscoped: set[str], scoped: set[str]) -> pa.ChunkedArray:
    every = pc.is_in(values, value_set=pa.array(sorted(unscoped), pa.string()))
    keys = pc.binary_join_element_wise(values, scopes, _SEP)
    within = pc.is_in(keys, value_set=pa.array(sorted(scoped), pa.string()))
    return pc.fill_null(pc.or_kleene(every, within), False)


def _sets(entries: list[Entry], key: str) -> tuple[set[str], set[str]]:
    """Entries' identities of one kind: those for every scope, and `identity + _SEP + scope` keys."""
    unscoped = {getattr(e, key) for e in entries if getattr(e, key) and e.scope is None}
    scoped = {f"{getattr(e, key)}{_SEP}{scope_key(e.scope)}" for e in entries if getattr(e, key) and e.scope is not None}
    return unscoped, scoped


def _recipient_hits(column: pa.ChunkedArray, scopes: pa.ChunkedArray, entries: list[Entry]) -> tuple[list[bool], list[bool]]:
    """Per row: does any recipient of its field match an entry (within the row's scope), and is the
    field unparseable. Each distinct field is parsed once."""
    unscoped, scoped = _sets(entries, "email")
    parsed: dict[str, list[str] | None] = {}
    blocked, unreadable = [], []
    for value, scope in zip(_text(column).to_pylist(), scopes.to_pylist(), strict=True):
        if value is None:
            addresses: list[str] | None = []
        elif value in parsed:
            addresses = parsed[value]
        else:
            addresses = parsed[value] = recipient_addresses(value)
        blocked.append(any(a in unscoped or f"{a}{_SEP}{scope}" in scoped for a in addresses or ()))
        unreadable.append(addresses is None)
    return blocked, unreadable


def split_recipients(table: pa.Table, entries: Iterable[Entry], cols: RecipientColumns) -> Suppression:
    """Rows that may be sent, and rows that fail with `reason` `blacklisted` (a recipient is
    blacklisted) or `unparseable` (the recipient field cannot be read), every column kept as it was."""
    entries = list(entries)
    scopes = _row_scopes(table, cols)
    blocked = pa.chunked_array([pa.array([False] * table.num_rows, pa.bool_())])
    unreadable = pa.chunked_array([pa.array([False] * table.num_rows, pa.bool_())])
    if cols.email is not None:
        hits, bad = _recipient_hits(table[cols.email], scopes, entries)
        blocked = pc.or_(blocked, pa.chunked_array([pa.array(hits, pa.bool_())]))
        unreadable = pa.chunked_array([pa.array(bad, pa.bool_())])
    if cols.user_id is not None:
        unscoped, scoped = _sets(entries, "user_id")
        blocked = pc.or_(blocked, _hits(_keys(table[cols.user_id], id_key), scopes, unscoped, scoped))
    failing = pc.or_(blocked, unreadable)
    reasons = pc.if_else(blocked, REASON, UNPARSEABLE)
    reason_column = "reason" if "reason" not in table.column_names else "suppression_reason"
    failed = table.filter(failing)
    failed_reasons = reasons.filter(failing)
    failed = failed.append_column(reason_column, failed_reasons.cast(pa.string()))
    counts = {r: n for r in REASONS if (n := failed_reasons.to_pylist().count(r))}
    return Suppression(table.filter(pc.invert(failing)), failed, table.num_rows, reason_column, counts)


def suppression_list(entries: Iterable[Entry], hashed: bool = False, scope: str | None = None) -> list[str]:
    """Sorted unique normalized emails of the entries (or their SHA-256 hex), for an email service
    provider's suppression list. With `scope`, only entries covering that scope (unscoped ones, and
    those of the scope); entries with only a user id have no address to list."""
    wanted = None if scope is None else scope_key(scope)
    emails = {e.email for e in entries if e.email and (wanted is None or e.scope is None or scope_key(e.scope) == wanted)}
    if hashed:
        return sorted(hashlib.sha256(e.encode("utf-8")).hexdigest() for e in emails)
    return sorted(emails)
