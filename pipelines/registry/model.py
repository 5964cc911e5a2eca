"""The registry's model: entries as records, a snapshot of the blacklist, identities and times (§2)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from pipelines.core.email_rules import is_plain_email, validate_email
from pipelines.core.errors import InputError
from pipelines.core.identity import (
    MAX_USER_ID_LENGTH,
    trim_identity,
    validate_scope,
    validate_user_id,
)

if TYPE_CHECKING:  # numpy, pyarrow and DuckDB load only where a snapshot is built, not per CLI call
    import pyarrow as pa

    from pipelines.core.model import Entry



SOURCES = ("cli", "api", "event", "import")
DEFAULT_TOP = 100
MAX_WINDOW = 10_000  # skip + top must stay below this, as in the Optimizely API
MAX_FUTURE = timedelta(minutes=5)  # clock skew tolerated on action timestamps
COMMAND_EVENTS = {"Blacklisted": True, "Whitelisted": False}


FIELDS = {"BlacklistId": "blacklist_id", "Email": "email", "UserId": "user_id", "Scope": "scope",
          "CreatedAt": "created_at", "Source": "source"}
_COLUMNS = "blacklist_id, email, user_id, scope, created_at, source"
HISTORY_KEYS = ("Seq", "At", "Action", "Outcome", "BlacklistId", "EmailHash", "UserIdHash", "Scope", "Channel",
                "RecordedAt")


def utc_now() -> str:
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any, what: str = "timestamp", future_ok: bool = False) -> str:
    """ISO-8601 -> the stored form (UTC, microseconds, `Z`). A time without a zone is taken as UTC.

    Raise InputError for anything else, or (unless `future_ok`, as for a query's bounds) for a time
    more than 5 minutes in the future (a future action would win against every real one until then).
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InputError(f"invalid {what}: expected ISO 8601 like 2026-11-01T09:00:00Z") from None
    else:
        raise InputError(f"invalid {what}: expected ISO 8601 like 2026-11-01T09:00:00Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not future_ok and moment - datetime.now(UTC) > MAX_FUTURE:
        raise InputError(f"invalid {what}: more than 5 minutes in the future")
    return format_time(moment)


@dataclass(frozen=True)
class Record:
    blacklist_id: str
    email: str | None
    user_id: str | None
    scope: str | None
    created_at: str
    source: str

    def to_json(self) -> dict[str, Any]:
        """The Optimizely shape (`BlacklistId`, `Email`, `Scope`) plus `UserId`, `CreatedAt`, `Source`."""
        return {"BlacklistId": self.blacklist_id, "Email": self.email, "UserId": self.user_id,
                "Scope": self.scope, "CreatedAt": self.created_at, "Source": self.source}

    def to_optimizely(self) -> dict[str, Any]:
        """The Optimizely list item; `UserId` only when the entry has one (our extension)."""
        item = {"BlacklistId": self.blacklist_id, "Email": self.email, "Scope": self.scope}
        if self.user_id is not None:
            item["UserId"] = self.user_id
        return item

    def to_entry(self) -> Entry:
        from pipelines.core.model import Entry

        return Entry(self.blacklist_id, self.email, self.user_id, self.scope)


@dataclass(frozen=True)
class Page:
    total: int
    items: list[Record]

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "count": len(self.items), "items": [r.to_json() for r in self.items]}


_RECORD_COLUMNS = ("blacklist_id", "email", "user_id", "scope", "created_at", "source", "added_seq")


def _record_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([(name, pa.int64() if name == "added_seq" else pa.string()) for name in _RECORD_COLUMNS])


@dataclass(frozen=True)
class Snapshot:
    """One consistent version of the blacklist, as a sweep reads it (columns of `entries`, in Arrow)."""

    version: int
    table: pa.Table = field(repr=False)

    @property
    def count(self) -> int:
        return self.table.num_rows

    # A sweep reads `records`, `entries` and `added` several times (match, verify, publish, report): each is
    # built from the table once per snapshot (a few hundred ms at 10,000 entries) and handed out as a copy.
    @cached_property
    def _records(self) -> tuple[Record, ...]:
        columns = [self.table[name].to_pylist() for name in _RECORD_COLUMNS[:6]]
        return tuple(Record(*row) for row in zip(*columns, strict=True))

    @cached_property
    def _added(self) -> dict[str, int]:
        ids, seqs = self.table["blacklist_id"].to_pylist(), self.table["added_seq"].to_pylist()
        return {bid: seq for bid, seq in zip(ids, seqs, strict=True) if seq is not None}

    @cached_property
    def _entries(self) -> tuple[Entry, ...]:
        return tuple(r.to_entry() for r in self._records)

    @property
    def records(self) -> list[Record]:
        return list(self._records)

    @property
    def added(self) -> dict[str, int]:
        """BlacklistId -> the blacklist version (history `seq`) that added the entry, where on record."""
        return dict(self._added)

    @property
    def entries(self) -> list[Entry]:
        return list(self._entries)

    def entries_table(self) -> pa.Table:
        """The table `pipelines.core.match` matches against (ENTRY_SCHEMA, entry scopes lower-cased), built in Arrow."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from pipelines.core import match
        from pipelines.core.match import ENTRY_SCHEMA

        t = self.table
        columns = {"bid": t["blacklist_id"], "email": t["email"], "user_id": t["user_id"],
                   "scope": pc.utf8_lower(t["scope"]),
                   "added": pc.fill_null(t["added_seq"], getattr(match, "UNKNOWN_ADDED", 2**62))}
        table = pa.Table.from_arrays([columns[name].cast(ENTRY_SCHEMA.field(name).type) for name in ENTRY_SCHEMA.names],
                                     schema=ENTRY_SCHEMA)
        return match.normalised_entries(table)


class Identity(NamedTuple):
    """Who an action is about: a user id, an email, or both; `scope` None means every scope."""

    email: str | None
    user_id: str | None
    scope: str | None


_PLAIN_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _email(raw: str) -> str:
    """`validate_email` (normalise, then refuse undeliverable addresses), with a shortcut for the
    common printable-ASCII case (10M imports)."""
    if raw.isascii():
        email = raw.strip(" ").lower()
        if is_plain_email(email):
            return email
    return validate_email(raw)


def _user_id(raw: str) -> str:
    """`validate_user_id`, with a shortcut for the common printable-ASCII case."""
    user_id = raw.strip(" ")
    if user_id and len(user_id) <= MAX_USER_ID_LENGTH and user_id.isascii() and user_id.isprintable():
        return user_id
    return validate_user_id(raw)


def make_identity(email: str | None, user_id: str | None, scope: str | None) -> Identity:
    """Validate and normalise; raise InputError (never echoing the email) when invalid. An email or
    user id that is blank after trimming counts as absent (docs/spec.md §2)."""
    email = _email(email) if email is not None and trim_identity(email) is not None else None
    user_id = _user_id(user_id) if user_id is not None and trim_identity(user_id) is not None else None
    scope = validate_scope(scope) if scope is not None else None
    if email is None and user_id is None:
        raise InputError("an entry needs an email or a user id (or both)")
    return Identity(email, user_id, scope)


def _check_channel(channel: str) -> str:
    if channel not in SOURCES:
        raise InputError(f"invalid channel {channel!r}: use one of {', '.join(SOURCES)}")
    return channel
