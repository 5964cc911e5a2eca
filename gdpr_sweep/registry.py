"""The blacklist registry: an SQLite database file in WAL mode (SPEC §2).

Two semantics over one store:
- Optimizely: entries (`BlacklistId`, `Email`, `UserId`, `Scope`) added, removed by id, listed,
  imported and exported as `{"total", "count", "items"}`;
- CrossEngage: a per-identity status (user id, or email + business unit = scope) set and unset by
  any channel (`cli`, `api`, `event`, `import`). For one identity the latest action by timestamp
  wins, whichever channel it came through (`docs/decisions/0103-registry-semantics.md`).

`entries` holds the current blacklist; `history` is append-only and never holds a plaintext
email or user id (keyed hashes, HMAC-SHA256 with a key stored in the database). Every action is a
history row with its effective time (`at`), the time it was recorded, its channel and its outcome
(`applied`, `unchanged`, `superseded`). The blacklist version is the sequence number of the latest
history row, so a sweep can say which version it used.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import re
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pipelines.email_rules import is_plain_email, validate_email
from pipelines.errors import Busy, InputError, NotFound, SweepError
from pipelines.identity import (
    MAX_USER_ID_LENGTH,
    normalize_email,
    trim_identity,
    validate_scope,
    validate_user_id,
)

if TYPE_CHECKING:  # numpy, pyarrow and DuckDB load only where a snapshot is built, not per CLI call
    import pyarrow as pa

    from pipelines.match import Entry

SOURCES = ("cli", "api", "event", "import")
DEFAULT_TOP = 100
MAX_WINDOW = 10_000  # skip + top must stay below this, as in the Optimizely API
MAX_FUTURE = timedelta(minutes=5)  # clock skew tolerated on action timestamps
COMMAND_EVENTS = {"Blacklisted": True, "Whitelisted": False}
SCHEMA_VERSION = 2
_BAD_LINES_SHOWN = 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    blacklist_id TEXT PRIMARY KEY,
    email TEXT,
    user_id TEXT,
    scope TEXT,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL,
    added_seq INTEGER,
    CHECK (email IS NOT NULL OR user_id IS NOT NULL)
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_identity
    ON entries (coalesce(email, ''), coalesce(user_id, ''), coalesce(scope, ''));
CREATE INDEX IF NOT EXISTS entries_user_id ON entries (user_id);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    blacklist_id TEXT,
    email_hash TEXT,
    user_id_hash TEXT,
    scope TEXT,
    channel TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'applied',
    recorded_at TEXT
);
CREATE INDEX IF NOT EXISTS history_email ON history (email_hash, at);
CREATE INDEX IF NOT EXISTS history_user_id ON history (user_id_hash, at);
CREATE INDEX IF NOT EXISTS history_entry ON history (blacklist_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Version 1 (the walking skeleton) had no outcome / recorded_at and a NOT NULL blacklist_id.
_MIGRATE_V1 = """
ALTER TABLE entries ADD COLUMN added_seq INTEGER;
ALTER TABLE history RENAME TO history_v1;
DROP INDEX IF EXISTS history_email;
DROP INDEX IF EXISTS history_user_id;
DROP INDEX IF EXISTS history_entry;
DROP INDEX IF EXISTS entries_email;
"""
_COPY_V1 = """
INSERT INTO history (seq, at, action, blacklist_id, email_hash, user_id_hash, scope, channel, outcome, recorded_at)
SELECT seq, at, action, blacklist_id, email_hash, user_id_hash, scope, channel, 'applied', at FROM history_v1;
DROP TABLE history_v1;
UPDATE entries SET added_seq = (SELECT min(seq) FROM history h WHERE h.blacklist_id = entries.blacklist_id);
"""

# Public field names (Optimizely style) -> column, for filtering and sorting.
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
        from pipelines.match import Entry

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

    @property
    def records(self) -> list[Record]:
        columns = [self.table[name].to_pylist() for name in _RECORD_COLUMNS[:6]]
        return [Record(*row) for row in zip(*columns, strict=True)]

    @property
    def added(self) -> dict[str, int]:
        """BlacklistId -> the blacklist version (history `seq`) that added the entry, where on record."""
        ids, seqs = self.table["blacklist_id"].to_pylist(), self.table["added_seq"].to_pylist()
        return {bid: seq for bid, seq in zip(ids, seqs, strict=True) if seq is not None}

    @property
    def entries(self) -> list[Entry]:
        return [r.to_entry() for r in self.records]

    def entries_table(self) -> pa.Table:
        """The table `pipelines.match` matches against (ENTRY_SCHEMA, entry scopes lower-cased), built in Arrow."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from pipelines import match
        from pipelines.match import ENTRY_SCHEMA

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


class _Hasher:
    def __init__(self, key: bytes):
        self._key = key

    def __call__(self, value: str | None) -> str | None:
        return None if value is None else hmac.digest(self._key, value.encode(), "sha256").hex()


@dataclass
class _Tx:
    """One open write transaction with its hasher and the recording time."""

    con: sqlite3.Connection
    hash: _Hasher
    now: str

    def log(self, at: str, action: str, outcome: str, bid: str | None, ident: Identity, channel: str) -> int:
        """Append one history row; return its sequence number."""
        cur = self.con.execute(
            "INSERT INTO history (at, action, blacklist_id, email_hash, user_id_hash, scope, channel, outcome,"
            " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [at, action, bid, self.hash(ident.email), self.hash(ident.user_id), ident.scope, channel, outcome,
             self.now])
        return int(cur.lastrowid or 0)


def _bad_lines(errors: Sequence[tuple[int | str, str]], what: str) -> InputError:
    """One message naming every bad line (the first 20 with their reason); `n` is a number or a place."""
    shown = "; ".join(f"{_place(n)}: {msg}" for n, msg in errors[:_BAD_LINES_SHOWN])
    more = f"; and {len(errors) - _BAD_LINES_SHOWN} more" if len(errors) > _BAD_LINES_SHOWN else ""
    lines = ", ".join(str(n) for n, _ in errors[:_BAD_LINES_SHOWN])
    return InputError(f"{what}: {len(errors)} bad line(s) ({lines}{', ...' if more else ''}), nothing imported: "
                      f"{shown}{more}")


LOCK_WAIT_SECONDS = 60.0


def _begin_immediate(con: sqlite3.Connection) -> None:
    """Take the write lock, retrying every few milliseconds for up to a minute.

    SQLite's own busy handler backs off to 100 ms sleeps, which leaves the lock idle most of the time
    when many processes write at once; short jittered retries keep it busy.
    """
    con.execute("PRAGMA busy_timeout = 0")
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    try:
        while True:
            try:
                con.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise Busy("the blacklist database stayed locked for a minute; try again") from None
                time.sleep(random.uniform(0.0005, 0.003))
    finally:
        con.execute("PRAGMA busy_timeout = 60000")


def _place(n: int | str) -> str:
    return f"line {n}" if isinstance(n, int) else str(n)


class Registry:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:  # connections stay with their process and thread
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    # -- connection and schema ---------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        """This thread's connection, opened once and kept: closing the last connection to a WAL
        database checkpoints it, which made every short operation pay for a full checkpoint."""
        cached = getattr(self._local, "con", None)
        if cached is not None and self._local.pid == os.getpid():
            return cached
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        try:
            con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as exc:
            raise SweepError(f"{self.path}: cannot open the blacklist database ({exc})") from None
        try:
            if fresh:
                os.chmod(self.path, 0o600)
            con.execute("PRAGMA busy_timeout = 60000")
            if con.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                self._init_schema(con)
            con.execute("PRAGMA synchronous = FULL")
            con.execute("PRAGMA secure_delete = ON")  # removed emails are overwritten, not left in free pages
        except BaseException:
            con.close()
            raise
        self._local.con, self._local.pid = con, os.getpid()
        return con

    def close(self) -> None:
        """Close this thread's connection (the last one to close folds the WAL into the database)."""
        con = getattr(self._local, "con", None)
        self._local.con = None
        if con is not None:
            con.close()

    @staticmethod
    def _init_schema(con: sqlite3.Connection) -> None:
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("BEGIN IMMEDIATE")
        try:
            if con.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                columns = {r[1] for r in con.execute("PRAGMA table_info(history)")}
                migrate = bool(columns) and "outcome" not in columns
                if migrate:
                    for statement in _MIGRATE_V1.strip().split(";\n"):
                        con.execute(statement)
                for statement in _SCHEMA.strip().split(";\n"):
                    con.execute(statement)
                if migrate:
                    for statement in _COPY_V1.strip().split(";\n"):
                        con.execute(statement)
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        try:
            con = self._open()
            try:
                if write:
                    _begin_immediate(con)
                else:
                    con.execute("BEGIN")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            except sqlite3.DatabaseError:
                self.close()
                raise
        except sqlite3.DatabaseError as exc:
            raise SweepError(f"{self.path}: blacklist database error ({exc})") from None

    @contextmanager
    def _write(self) -> Iterator[_Tx]:
        with self._connect(write=True) as con:
            key = self._key(con)
            assert key is not None
            yield _Tx(con, _Hasher(key), utc_now())

    def _checkpoint(self) -> None:
        """After a removal, fold the WAL back so no old page with the email lingers in it (best effort)."""
        try:
            con = sqlite3.connect(self.path, timeout=0, isolation_level=None)
            try:
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                con.close()
        except sqlite3.Error:
            pass  # a busy database checkpoints when its last connection closes

    # -- keyed hashes -----------------------------------------------------------------------
    @staticmethod
    def _key(con: sqlite3.Connection, create: bool = True) -> bytes | None:
        row = con.execute("SELECT value FROM meta WHERE key = 'hmac_key'").fetchone()
        if row:
            return bytes.fromhex(row[0])
        if not create:
            return None
        key = secrets.token_bytes(32)
        con.execute("INSERT INTO meta (key, value) VALUES ('hmac_key', ?)", [key.hex()])
        return key

    # -- the core of latest-wins ------------------------------------------------------------
    @staticmethod
    def _last_action(con: sqlite3.Connection, hashed: tuple[str | None, str | None], scope: str | None) -> str | None:
        """The time of the identity's latest effective action (applied or unchanged).

        A scoped action competes with actions on that scope and on every scope; an action for every
        scope competes with actions on any scope.
        """
        email_hash, user_id_hash = hashed
        sql = ("SELECT max(at) FROM history WHERE outcome <> 'superseded' "
               "AND (email_hash = ? OR user_id_hash = ?)")
        params: list[Any] = [email_hash, user_id_hash]
        if scope is not None:
            sql += " AND (scope IS NULL OR scope = ?)"
            params.append(scope)
        return con.execute(sql, params).fetchone()[0]

    @staticmethod
    def _blacklisted_at(con: sqlite3.Connection, hashed: tuple[str | None, str | None], scope: str | None,
                        at: str) -> bool:
        """Whether a blacklisting competing with the identity's action was effective at exactly `at`:
        on equal timestamps blacklisting wins (SPEC §2), whichever arrived first."""
        sql = ("SELECT 1 FROM history WHERE outcome <> 'superseded' AND action IN ('add', 'set') AND at = ? "
               "AND (email_hash = ? OR user_id_hash = ?)")
        params: list[Any] = [at, *hashed]
        if scope is not None:
            sql += " AND (scope IS NULL OR scope = ?)"
            params.append(scope)
        return con.execute(sql + " LIMIT 1", params).fetchone() is not None

    @staticmethod
    def _exact(con: sqlite3.Connection, ident: Identity) -> Record | None:
        row = con.execute(
            f"SELECT {_COLUMNS} FROM entries WHERE coalesce(email, '') = ? AND coalesce(user_id, '') = ? "
            "AND coalesce(scope, '') = ?", [ident.email or "", ident.user_id or "", ident.scope or ""]).fetchone()
        return Record(*row) if row else None

    @staticmethod
    def _matching(con: sqlite3.Connection, ident: Identity, covering: bool) -> list[Record]:
        """Entries naming the identity's email or user id: in its scope (`covering`: or every scope)."""
        # `coalesce(email, '')` is the leading column of the identity index (no separate email index).
        named = [cond for cond, value in (("coalesce(email, '') = ?", ident.email), ("user_id = ?", ident.user_id))
                 if value is not None]
        sql = f"SELECT {_COLUMNS} FROM entries WHERE ({' OR '.join(named)})"
        params: list[Any] = [v for v in (ident.email, ident.user_id) if v is not None]
        if ident.scope is not None:
            sql += " AND (scope = ? OR scope IS NULL)" if covering else " AND scope = ?"
            params.append(ident.scope)
        return [Record(*r) for r in con.execute(sql + " ORDER BY created_at, blacklist_id", params)]

    def _set(self, tx: _Tx, ident: Identity, blacklisted: bool, at: str, channel: str, action: str,
             force: bool = False, blacklist_id: str | None = None) -> tuple[str, list[Record]]:
        """Apply one action; return (outcome, records created or removed or found)."""
        if not force:
            hashed = (tx.hash(ident.email), tx.hash(ident.user_id))
            last = self._last_action(tx.con, hashed, ident.scope)
            if last is not None and (at < last or (at == last and not blacklisted
                                                    and self._blacklisted_at(tx.con, hashed, ident.scope, at))):
                tx.log(at, action, "superseded", None, ident, channel)
                return "superseded", []
        if blacklisted:
            existing = self._exact(tx.con, ident)
            if existing:
                tx.log(at, action, "unchanged", existing.blacklist_id, ident, channel)
                return "unchanged", [existing]
            rec = Record(blacklist_id or str(uuid.uuid4()), ident.email, ident.user_id, ident.scope, at, channel)
            seq = tx.log(at, action, "applied", rec.blacklist_id, ident, channel)
            tx.con.execute(f"INSERT INTO entries ({_COLUMNS}, added_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [rec.blacklist_id, rec.email, rec.user_id, rec.scope, rec.created_at, rec.source, seq])
            return "applied", [rec]
        removed = self._matching(tx.con, ident, covering=False)
        if not removed:
            tx.log(at, action, "unchanged", None, ident, channel)
            return "unchanged", []
        for rec in removed:
            tx.con.execute("DELETE FROM entries WHERE blacklist_id = ?", [rec.blacklist_id])
            tx.log(at, action, "applied", rec.blacklist_id, Identity(rec.email, rec.user_id, rec.scope), channel)
        return "applied", removed

    def _status(self, con: sqlite3.Connection, ident: Identity) -> dict[str, Any]:
        covering = self._matching(con, ident, covering=True)
        if covering:
            first = covering[0]
            return {"blacklisted": True, "since": first.created_at, "channel": first.source,
                    "BlacklistId": first.blacklist_id, "Scope": first.scope}
        key = self._key(con, create=False)
        row = None
        if key is not None:
            h = _Hasher(key)
            sql = ("SELECT at, channel FROM history WHERE outcome <> 'superseded' AND action IN ('remove', 'unset') "
                   "AND (email_hash = ? OR user_id_hash = ?)")
            params: list[Any] = [h(ident.email), h(ident.user_id)]
            if ident.scope is not None:
                sql += " AND (scope IS NULL OR scope = ?)"
                params.append(ident.scope)
            row = con.execute(sql + " ORDER BY at DESC, seq DESC LIMIT 1", params).fetchone()
        return {"blacklisted": False, "since": row[0] if row else None, "channel": row[1] if row else None,
                "BlacklistId": None, "Scope": None}

    # -- Optimizely-style operations ---------------------------------------------------------
    def add(self, email: str | None = None, user_id: str | None = None, scope: str | None = None,
            source: str = "cli") -> tuple[Record, bool]:
        """Add an entry; return (record, created). Adding an identical entry returns the existing one."""
        _check_channel(source)
        ident = make_identity(email, user_id, scope)
        with self._write() as tx:
            outcome, records = self._set(tx, ident, True, tx.now, source, "add", force=True)
        return records[0], outcome == "applied"

    def remove(self, blacklist_id: str, channel: str = "cli") -> Record:
        """Remove (whitelist) an entry by id; NotFound when there is none. Purged data stays purged."""
        _check_channel(channel)
        with self._write() as tx:
            row = tx.con.execute(f"SELECT {_COLUMNS} FROM entries WHERE blacklist_id = ?", [blacklist_id]).fetchone()
            if row is None:
                raise NotFound(f"no blacklist entry with id {blacklist_id[:64]!r}")
            rec = Record(*row)
            tx.con.execute("DELETE FROM entries WHERE blacklist_id = ?", [blacklist_id])
            tx.log(tx.now, "remove", "applied", rec.blacklist_id, Identity(rec.email, rec.user_id, rec.scope),
                   channel)
        self._drop_cache()
        self._checkpoint()
        return rec

    def get(self, blacklist_id: str) -> Record:
        with self._connect() as con:
            row = con.execute(f"SELECT {_COLUMNS} FROM entries WHERE blacklist_id = ?", [blacklist_id]).fetchone()
        if row is None:
            raise NotFound(f"no blacklist entry with id {blacklist_id[:64]!r}")
        return Record(*row)

    def list(self, *, email: str | None = None, scope: str | None = None, user_id: str | None = None,
             source: str | None = None, created_after: str | None = None, created_before: str | None = None,
             skip: int = 0, top: int = DEFAULT_TOP, order_by: str = "CreatedAt", descending: bool = False) -> Page:
        """Filter, sort and page the entries (Optimizely semantics: skip + top below 10000).

        Filters are exact (email normalised; `scope` "*" lists the entries for every scope);
        `created_after` / `created_before` are exclusive bounds.
        """
        if skip < 0 or top < 1 or skip + top >= MAX_WINDOW:
            raise InputError(f"paging: need skip >= 0, top >= 1 and skip + top < {MAX_WINDOW}; "
                             "narrow the list with filters (e.g. --created-after) to go further")
        if order_by not in FIELDS:
            raise InputError(f"cannot sort by {order_by!r}: use one of {', '.join(FIELDS)}")
        where, params = [], []
        if scope == "*":
            where.append("scope IS NULL")
            scope = None
        for column, value in (("email", normalize_email(email) if email is not None else None),
                              ("scope", validate_scope(scope) if scope is not None else None),
                              ("user_id", validate_user_id(user_id) if user_id is not None else None),
                              ("source", _check_channel(source) if source is not None else None)):
            if value is not None:
                where.append("coalesce(email, '') = ?" if column == "email" else f"{column} = ?")
                params.append(value)
        if created_after:
            where.append("created_at > ?")
            params.append(parse_time(created_after, "created-after", future_ok=True))
        if created_before:
            where.append("created_at < ?")
            params.append(parse_time(created_before, "created-before", future_ok=True))
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        order = f"{FIELDS[order_by]} {'DESC' if descending else 'ASC'}, blacklist_id"
        with self._connect() as con:
            total = con.execute(f"SELECT count(*) FROM entries {clause}", params).fetchone()[0]
            rows = con.execute(f"SELECT {_COLUMNS} FROM entries {clause} ORDER BY {order} LIMIT ? OFFSET ?",
                               [*params, top, skip]).fetchall()
        return Page(total, [Record(*r) for r in rows])

    def snapshot(self) -> Snapshot:
        """Every entry and the version they form, read in one transaction (columnar, fast at 10M entries).

        The last snapshot is kept beside the database (`<db>.snapshot.arrow`, mode 0600) with its
        version; the next one reads only the entries touched since (every change to an entry is a
        history row naming it), so a nightly sweep over 10M entries does not re-read them all.
        """
        with self._connect() as con:
            version = con.execute("SELECT coalesce(max(seq), 0) FROM history").fetchone()[0]
            key = self._key(con, create=False)
            cache_id = hashlib.sha256(key).hexdigest()[:32] if key else None
            cached = self._read_cache(cache_id, version)
            if cached is not None and cached[0] == version:
                return Snapshot(version, cached[1])
            updated = _update_entries(con, *cached) if cached is not None else None
            table = updated[0] if updated is not None else _read_entries(con)
        if updated is None or updated[1] > _REWRITE_AFTER:
            self._write_cache(cache_id, version, table)  # else the kept file stays valid for its own version
        return Snapshot(version, table)

    def _cache_path(self) -> Path:
        return self.path.with_name(self.path.name + ".snapshot.arrow")

    def _read_cache(self, cache_id: str | None, version: int) -> tuple[int, pa.Table] | None:
        """The kept snapshot if it belongs to this database and is not newer than `version`."""
        if cache_id is None:
            return None
        import pyarrow as pa
        import pyarrow.feather as feather

        try:
            table = feather.read_table(self._cache_path(), memory_map=True)
        except (OSError, pa.ArrowInvalid):
            return None
        meta = table.schema.metadata or {}
        try:
            cached_version = int(meta.get(b"version", b"-1"))
        except ValueError:
            return None
        if (meta.get(b"registry") != cache_id.encode() or meta.get(b"schema") != str(SCHEMA_VERSION).encode()
                or not 0 <= cached_version <= version or table.schema.remove_metadata() != _record_schema()):
            return None
        return cached_version, table.replace_schema_metadata(None)

    def _write_cache(self, cache_id: str | None, version: int, table: pa.Table) -> None:
        if cache_id is None:
            return
        import pyarrow.feather as feather

        target = self._cache_path()
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        meta = {"registry": cache_id, "version": str(version), "schema": str(SCHEMA_VERSION)}
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                feather.write_feather(table.replace_schema_metadata(meta), fh, compression="uncompressed")
            os.replace(tmp, target)
        except OSError:
            tmp.unlink(missing_ok=True)  # the cache only saves time; the database stays the truth

    def _drop_cache(self) -> None:
        """After a removal: the kept snapshot must not keep the removed email (best effort)."""
        self._cache_path().unlink(missing_ok=True)

    def entry_versions(self) -> dict[str, int]:
        """For each current entry, the blacklist version (history `seq`) of its latest history row.

        Incremental sweeps match a file only against entries newer than the version it was verified
        against (docs/decisions/0007-incremental-sweeps.md). The latest row is at or after the entry's
        addition, so this errs on the side of checking an entry again, never of skipping it.
        """
        with self._connect() as con:
            rows = con.execute("SELECT h.blacklist_id, max(h.seq) FROM history AS h "
                               "JOIN entries AS e ON e.blacklist_id = h.blacklist_id GROUP BY h.blacklist_id")
            return dict(rows.fetchall())

    def history(self, blacklist_id: str | None = None, *, email: str | None = None,
                user_id: str | None = None) -> list[dict[str, Any]]:
        """The history in order, all of it, or of one entry, or of one person (by email or user id,
        found through their keyed hashes: the history itself never holds them)."""
        where, params = [], []
        if blacklist_id:
            where.append("blacklist_id = ?")
            params.append(blacklist_id)
        with self._connect() as con:
            if email is not None or user_id is not None:
                ident = make_identity(email, user_id, None)
                key = self._key(con, create=False)
                if key is None:
                    return []
                h = _Hasher(key)
                named = [c for c, v in (("email_hash = ?", ident.email), ("user_id_hash = ?", ident.user_id)) if v]
                where.append(f"({' OR '.join(named)})")
                params += [h(v) for v in (ident.email, ident.user_id) if v]
            sql = ("SELECT seq, at, action, outcome, blacklist_id, email_hash, user_id_hash, scope, channel, "
                   "recorded_at FROM history")
            rows = con.execute(sql + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq",
                               params).fetchall()
        return [dict(zip(HISTORY_KEYS, r, strict=True)) for r in rows]

    # -- CrossEngage-style status ------------------------------------------------------------
    def set_status(self, *, user_id: str | None = None, email: str | None = None, scope: str | None = None,
                   blacklisted: bool, at: str | None = None, channel: str) -> dict:
        """Set (True) or unset (False) an identity's blacklist status as of `at` (default now).

        An action older than the identity's latest action is recorded as `superseded` and changes
        nothing. Setting creates the entry (email, user id, scope) unless it exists; unsetting removes
        every entry naming the email or user id in that scope (all scopes when `scope` is None).
        Returns the status afterwards, plus `Outcome`.
        """
        _check_channel(channel)
        ident = make_identity(email, user_id, scope)
        when = parse_time(at, "at") if at is not None else None
        with self._write() as tx:
            outcome, _ = self._set(tx, ident, bool(blacklisted), when or tx.now, channel,
                                   "set" if blacklisted else "unset")
            result = self._status(tx.con, ident)
        if not blacklisted and outcome == "applied":
            self._drop_cache()
            self._checkpoint()
        return {**result, "Outcome": outcome}

    def status(self, *, user_id: str | None = None, email: str | None = None, scope: str | None = None) -> dict:
        """Is this identity blacklisted (in `scope`, or anywhere when None), since when, through which channel."""
        ident = make_identity(email, user_id, scope)
        with self._connect() as con:
            return self._status(con, ident)

    def apply_events(self, lines: list[dict], channel: str = "event",
                     numbers: Sequence[int | str] | None = None) -> dict:
        """Apply CrossEngage feed items (`Blacklisted` / `Whitelisted`) all or nothing.

        Every item is validated first; any bad one raises InputError naming the 1-based line
        numbers and nothing is applied. Other event names are ignored and counted. Valid commands are
        applied in timestamp order (then line order) in one transaction, latest action winning;
        an item identical to one already recorded (same identity, event, timestamp, channel) is a
        `duplicate` and is skipped, so re-reading the same snapshot changes nothing. `numbers` gives
        each item's line number in its file, or a place like "file x row 3", for the error message
        (default: 1, 2, ...).
        """
        _check_channel(channel)
        commands: list[tuple[str, int, tuple[Identity, bool, str | None]]] = []
        errors: list[tuple[int | str, str]] = []
        ignored = 0
        for i, line in enumerate(lines):
            n = numbers[i] if numbers is not None else i + 1
            try:
                parsed = parse_feed_line(line)
            except InputError as exc:
                errors.append((n, str(exc)))
                continue
            if parsed is None:
                ignored += 1
            else:
                commands.append((parsed[2] or "", i, parsed))
        if errors:
            raise _bad_lines(errors, "event feed")
        commands.sort(key=lambda c: (c[0], c[1]))
        counts = {"lines": len(lines), "ignored": ignored, "applied": 0, "unchanged": 0, "superseded": 0,
                  "duplicate": 0, "added": 0, "removed": 0}
        if not commands:
            return counts
        with self._write() as tx:
            for _, _, (ident, blacklisted, at) in commands:
                at = at or tx.now
                action = "set" if blacklisted else "unset"
                if self._seen(tx, ident, action, at, channel):
                    counts["duplicate"] += 1
                    continue
                outcome, records = self._set(tx, ident, blacklisted, at, channel, action)
                counts[outcome] += 1
                if outcome == "applied":
                    counts["added" if blacklisted else "removed"] += len(records)
        if counts["removed"]:
            self._drop_cache()
            self._checkpoint()
        return counts

    @staticmethod
    def _seen(tx: _Tx, ident: Identity, action: str, at: str, channel: str) -> bool:
        email_hash, user_id_hash = tx.hash(ident.email), tx.hash(ident.user_id)
        return tx.con.execute(
            "SELECT 1 FROM history WHERE (email_hash = ? OR user_id_hash = ?) AND at = ? AND action = ? "
            "AND channel = ? AND email_hash IS ? AND user_id_hash IS ? AND scope IS ? LIMIT 1",
            [email_hash, user_id_hash, at, action, channel, email_hash, user_id_hash, ident.scope]).fetchone() is not None

    # -- Optimizely list format -------------------------------------------------------------
    def import_optimizely(self, doc: dict, channel: str = "import") -> dict:
        """Import `{"total"?, "count"?, "items": [{"BlacklistId"?, "Email"?, "UserId"?, "Scope"?}]}`.

        All items are validated first (1-based item numbers in the error); then, in one transaction,
        each becomes an entry unless the same identity exists (counted `existing`). A given
        `BlacklistId` is kept, so an export imports back to the same entries; an id already used by
        a different identity is an error.
        """
        _check_channel(channel)
        items = _optimizely_items(doc)
        idents, ids, errors = _validate_items(items)
        if errors:
            raise _bad_lines(errors, "Optimizely list")
        counts = {"items": len(items), "added": 0, "existing": 0}
        with self._write() as tx:
            if _bulk_ok(tx.con, len(items)):
                counts["added"] = _bulk_insert(tx, idents, ids, channel)
                counts["existing"] = len(items) - counts["added"]
                return counts
            conflicts = []
            for n, (ident, bid) in enumerate(zip(idents, ids, strict=True), start=1):
                if bid is not None:
                    row = tx.con.execute(f"SELECT {_COLUMNS} FROM entries WHERE blacklist_id = ?", [bid]).fetchone()
                    if row is not None and Identity(*row[1:4]) != ident:
                        conflicts.append((n, "BlacklistId already used by a different entry"))
                        continue
                outcome, _ = self._set(tx, ident, True, tx.now, channel, "add", force=True, blacklist_id=bid)
                counts["added" if outcome == "applied" else "existing"] += 1
            if conflicts:
                raise _bad_lines(conflicts, "Optimizely list")
        return counts

    def export_optimizely(self) -> dict:
        """Every entry in the Optimizely list format, ordered by creation time."""
        with self._connect() as con:
            rows = con.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY created_at, added_seq, blacklist_id")
            items = [Record(*r).to_optimizely() for r in rows]
        return {"total": len(items), "count": len(items), "items": items}


# -- parsing and validation of import lines ------------------------------------------------------
def parse_feed_line(line: Any) -> tuple[Identity, bool, str | None] | None:
    """One CrossEngage feed item -> (identity, blacklisted, at) or None for other events; InputError if bad."""
    if not isinstance(line, dict):
        raise InputError("expected a JSON object")
    event = command_name(line.get("event"))
    if event is None:
        return None
    raw_id, raw_email, unit = line.get("id"), line.get("email"), line.get("businessUnit")
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
    InputError rather than a guess either way (docs/decisions/0231-vendor-api-compatibility.md).
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
            for key, value in (("Email", email), ("UserId", user_id), ("Scope", scope), ("BlacklistId", bid)):
                if value is not None and type(value) is not str:
                    raise InputError(f"'{key}' must be a string")
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


# -- bulk paths (10M entries) --------------------------------------------------------------------
_BULK_MIN = 50_000


def _bulk_ok(con: sqlite3.Connection, n: int) -> bool:
    """A large import into an empty registry takes the bulk path (no per-item look-ups)."""
    return n >= _BULK_MIN and con.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is None


def _uuids(n: int) -> list[str]:
    """n random (version 4) UUIDs, formatted with numpy in bulk rather than one `uuid4()` call each."""
    import numpy as np

    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = np.frombuffer(raw.tobytes().hex().encode(), dtype=np.uint8).reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src in (((0, 8), (0, 8)), ((9, 13), (8, 12)), ((14, 18), (12, 16)), ((19, 23), (16, 20)),
                     ((24, 36), (20, 32))):
        out[:, dst[0]:dst[1]] = hexed[:, src[0]:src[1]]
    text = out.tobytes().decode()
    return [text[i:i + 36] for i in range(0, 36 * n, 36)]


def _bulk_insert(tx: _Tx, idents: list[Identity], ids: list[str | None], channel: str) -> int:
    """Insert many entries into an empty registry: dedupe in memory, insert in key order, rebuild indexes.

    Identical to adding them one by one (one history row per entry, `added_seq` its sequence
    number), only without a look-up per item.
    """
    seen: set[Identity] = set()
    fresh = iter(_uuids(len(idents)))
    h, now, con = tx.hash, tx.now, tx.con
    unique: list[tuple[str, Identity]] = []
    for ident, bid in zip(idents, ids, strict=True):
        if ident in seen:
            continue
        seen.add(ident)
        unique.append((bid or next(fresh), ident))
    del seen
    if len({bid for bid, _ in unique}) != len(unique):
        raise InputError("Optimizely list: the same BlacklistId is given to different entries")
    base = con.execute("SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'history'), 0), "
                       "coalesce((SELECT max(seq) FROM history), 0))").fetchone()[0]
    indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                          "AND tbl_name IN ('entries', 'history') AND sql IS NOT NULL").fetchall()
    for name, _ in indexes:
        con.execute(f'DROP INDEX "{name}"')
    con.execute("PRAGMA cache_size = -262144")  # 256 MiB while bulk loading
    con.executemany(
        "INSERT INTO history (seq, at, action, blacklist_id, email_hash, user_id_hash, scope, channel, outcome, "
        "recorded_at) VALUES (?, ?, 'add', ?, ?, ?, ?, ?, 'applied', ?)",
        ((base + i, now, bid, h(ident.email), h(ident.user_id), ident.scope, channel, now)
         for i, (bid, ident) in enumerate(unique, start=1)))
    order = sorted(range(len(unique)), key=lambda i: unique[i][0])  # primary-key order: appends, not page splits
    con.executemany(
        f"INSERT INTO entries ({_COLUMNS}, added_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ((unique[i][0], *unique[i][1], now, channel, base + i + 1) for i in order))
    for _, statement in indexes:
        con.execute(statement)
    return len(unique)


_NULL = "\x1e"  # record separator: stands for NULL in the packed read below
_SEP = "\x1f"  # unit separator between fields
_CHUNK = 200_000


_INCREMENTAL_MAX = 500_000
_REWRITE_AFTER = 50_000


def _update_entries(con: sqlite3.Connection, since: int, cached: pa.Table) -> tuple[pa.Table, int] | None:
    """The kept snapshot at version `since`, brought up to date: drop every entry a later history row
    names, then add back those that exist now; with the number of entries touched. None when too
    much changed (read everything instead)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    touched = [r[0] for r in con.execute(
        "SELECT DISTINCT blacklist_id FROM history WHERE seq > ? AND blacklist_id IS NOT NULL LIMIT ?",
        [since, _INCREMENTAL_MAX + 1])]
    if len(touched) > _INCREMENTAL_MAX:
        return None
    rows: list[tuple[Any, ...]] = []
    for i in range(0, len(touched), 500):
        chunk = touched[i:i + 500]
        rows += con.execute(f"SELECT {_COLUMNS}, added_seq FROM entries WHERE blacklist_id IN "
                            f"({', '.join('?' * len(chunk))})", chunk).fetchall()
    kept = cached.filter(pc.invert(pc.is_in(cached["blacklist_id"], value_set=pa.array(touched, pa.string()))))
    schema = _record_schema()
    fresh = pa.Table.from_arrays([pa.array([r[i] for r in rows], f.type) for i, f in enumerate(schema)],
                                 schema=schema)
    return pa.concat_tables([kept, fresh]), len(touched)


def _read_entries(con: sqlite3.Connection) -> pa.Table:
    """Read `entries` into Arrow fast: per chunk of rowids, SQLite packs each column into one string
    (`group_concat`, all in one scan) and Arrow splits it. One Python object per column and 200k rows
    instead of seven per row.

    Emails, ids, scopes and times never contain control characters (validated on the way in), so
    the separators are safe.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = _record_schema()
    packed = ", ".join(f"group_concat(coalesce({c}, char(30)), char(31))" for c in schema.names)
    low, high = con.execute("SELECT min(rowid), max(rowid) FROM entries").fetchone()
    chunks: list[pa.Table] = []
    for start in range(low or 0, (high or -1) + 1, _CHUNK):
        row = con.execute(f"SELECT count(*), {packed} FROM entries WHERE rowid >= ? AND rowid < ?",
                          [start, start + _CHUNK]).fetchone()
        if not row[0]:
            continue
        arrays = []
        for column, text in zip(schema, row[1:], strict=True):
            col = pc.split_pattern(pa.array([text]), _SEP).flatten()
            col = pc.if_else(pc.equal(col, _NULL), pa.scalar(None, pa.string()), col)
            arrays.append(col.cast(column.type))
        chunks.append(pa.Table.from_arrays(arrays, schema=schema))
    if not chunks:
        return schema.empty_table()
    return pa.concat_tables(chunks).combine_chunks()
