"""The blacklist registry: an SQLite database file in WAL mode (SPEC §2).

`entries` holds the current blacklist; `history` is append-only and never holds a plaintext
email or user id (keyed hashes, HMAC-SHA256 with a key stored in the database). The blacklist
version is the sequence number of the latest history row, so a sweep can say which version it used.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.errors import InputError, NotFound, SweepError
from pipelines.identity import normalize_email, validate_scope, validate_user_id
from pipelines.match import Entry

SOURCES = ("cli", "api", "event", "import")
DEFAULT_TOP = 100
MAX_WINDOW = 10_000  # skip + top must stay below this, as in the Optimizely API

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    blacklist_id TEXT PRIMARY KEY,
    email TEXT,
    user_id TEXT,
    scope TEXT,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL,
    CHECK (email IS NOT NULL OR user_id IS NOT NULL)
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_identity
    ON entries (coalesce(email, ''), coalesce(user_id, ''), coalesce(scope, ''));
CREATE INDEX IF NOT EXISTS entries_user_id ON entries (user_id);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    blacklist_id TEXT NOT NULL,
    email_hash TEXT,
    user_id_hash TEXT,
    scope TEXT,
    channel TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Public field names (Optimizely style) -> column, for filtering and sorting.
FIELDS = {"BlacklistId": "blacklist_id", "Email": "email", "UserId": "user_id", "Scope": "scope",
          "CreatedAt": "created_at", "Source": "source"}


def utc_now() -> str:
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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

    def to_entry(self) -> Entry:
        return Entry(self.blacklist_id, self.email, self.user_id, self.scope)


@dataclass(frozen=True)
class Page:
    total: int
    items: list[Record]

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "count": len(self.items), "items": [r.to_json() for r in self.items]}


@dataclass(frozen=True)
class Snapshot:
    """One consistent version of the blacklist, as a sweep reads it."""

    version: int
    records: list[Record]

    @property
    def entries(self) -> list[Entry]:
        return [r.to_entry() for r in self.records]


class Registry:
    def __init__(self, path: Path):
        self.path = Path(path)

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
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
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = FULL")
            con.execute("PRAGMA secure_delete = ON")  # removed emails are overwritten, not left in free pages
            con.executescript(_SCHEMA)
            con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise SweepError(f"{self.path}: blacklist database error ({exc})") from None
        finally:
            con.close()

    # -- keyed hashes -----------------------------------------------------------------------
    def _key(self, con: sqlite3.Connection) -> bytes:
        row = con.execute("SELECT value FROM meta WHERE key = 'hmac_key'").fetchone()
        if row:
            return bytes.fromhex(row[0])
        key = secrets.token_bytes(32)
        con.execute("INSERT INTO meta (key, value) VALUES ('hmac_key', ?)", [key.hex()])
        return key

    @staticmethod
    def _hash(key: bytes, value: str | None) -> str | None:
        return None if value is None else hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    def _log(self, con: sqlite3.Connection, action: str, rec: Record, channel: str, at: str) -> None:
        key = self._key(con)
        con.execute(
            "INSERT INTO history (at, action, blacklist_id, email_hash, user_id_hash, scope, channel) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [at, action, rec.blacklist_id, self._hash(key, rec.email), self._hash(key, rec.user_id),
             rec.scope, channel])

    # -- operations ------------------------------------------------------------------------
    def add(self, email: str | None = None, user_id: str | None = None, scope: str | None = None,
            source: str = "cli") -> tuple[Record, bool]:
        """Add an entry; return (record, created). Adding an identical entry returns the existing one."""
        if source not in SOURCES:
            raise InputError(f"invalid source {source!r}: use one of {', '.join(SOURCES)}")
        email = normalize_email(email) if email is not None else None
        user_id = validate_user_id(user_id) if user_id is not None else None
        scope = validate_scope(scope) if scope is not None else None
        if email is None and user_id is None:
            raise InputError("an entry needs an email or a user id (or both)")
        with self._connect(write=True) as con:
            existing = con.execute(
                "SELECT * FROM entries WHERE coalesce(email, '') = ? AND coalesce(user_id, '') = ? "
                "AND coalesce(scope, '') = ?", [email or "", user_id or "", scope or ""]).fetchone()
            if existing:
                return Record(*existing), False
            rec = Record(str(uuid.uuid4()), email, user_id, scope, utc_now(), source)
            con.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                        [rec.blacklist_id, rec.email, rec.user_id, rec.scope, rec.created_at, rec.source])
            self._log(con, "add", rec, source, rec.created_at)
            return rec, True

    def remove(self, blacklist_id: str, channel: str = "cli") -> Record:
        """Remove (whitelist) an entry by id; NotFound when there is none. Purged data stays purged."""
        with self._connect(write=True) as con:
            row = con.execute("SELECT * FROM entries WHERE blacklist_id = ?", [blacklist_id]).fetchone()
            if row is None:
                raise NotFound(f"no blacklist entry with id {blacklist_id[:64]!r}")
            rec = Record(*row)
            con.execute("DELETE FROM entries WHERE blacklist_id = ?", [blacklist_id])
            self._log(con, "remove", rec, channel, utc_now())
            return rec

    def get(self, blacklist_id: str) -> Record:
        with self._connect() as con:
            row = con.execute("SELECT * FROM entries WHERE blacklist_id = ?", [blacklist_id]).fetchone()
        if row is None:
            raise NotFound(f"no blacklist entry with id {blacklist_id[:64]!r}")
        return Record(*row)

    def list(self, *, email: str | None = None, scope: str | None = None, user_id: str | None = None,
             source: str | None = None, created_after: str | None = None, created_before: str | None = None,
             skip: int = 0, top: int = DEFAULT_TOP, order_by: str = "CreatedAt", descending: bool = False) -> Page:
        """Filter, sort and page the entries (Optimizely semantics: skip + top below 10000)."""
        if skip < 0 or top < 1 or skip + top > MAX_WINDOW:
            raise InputError(f"paging: need skip >= 0, top >= 1 and skip + top <= {MAX_WINDOW}")
        if order_by not in FIELDS:
            raise InputError(f"cannot sort by {order_by!r}: use one of {', '.join(FIELDS)}")
        where, params = [], []
        for column, value in (("email", normalize_email(email) if email else None), ("scope", scope),
                              ("user_id", user_id), ("source", source)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if created_after:
            where.append("created_at > ?")
            params.append(created_after)
        if created_before:
            where.append("created_at < ?")
            params.append(created_before)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        order = f"{FIELDS[order_by]} {'DESC' if descending else 'ASC'}, blacklist_id"
        with self._connect() as con:
            total = con.execute(f"SELECT count(*) FROM entries {clause}", params).fetchone()[0]
            rows = con.execute(f"SELECT * FROM entries {clause} ORDER BY {order} LIMIT ? OFFSET ?",
                               [*params, top, skip]).fetchall()
        return Page(total, [Record(*r) for r in rows])

    def snapshot(self) -> Snapshot:
        """Every entry and the version they form, read in one transaction."""
        with self._connect() as con:
            version = con.execute("SELECT coalesce(max(seq), 0) FROM history").fetchone()[0]
            rows = con.execute("SELECT * FROM entries ORDER BY blacklist_id").fetchall()
        return Snapshot(version, [Record(*r) for r in rows])

    def history(self, blacklist_id: str | None = None) -> list[dict[str, Any]]:
        with self._connect() as con:
            sql = "SELECT seq, at, action, blacklist_id, email_hash, user_id_hash, scope, channel FROM history"
            rows = con.execute(sql + (" WHERE blacklist_id = ?" if blacklist_id else "") + " ORDER BY seq",
                               [blacklist_id] if blacklist_id else []).fetchall()
        keys = ("Seq", "At", "Action", "BlacklistId", "EmailHash", "UserIdHash", "Scope", "Channel")
        return [dict(zip(keys, r, strict=True)) for r in rows]
