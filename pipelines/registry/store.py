"""The registry's store: the SQLite file in WAL mode, its schema, transactions and keyed hashes.

One connection per thread, kept open; writes take the lock with `BEGIN IMMEDIATE` and wait for it
(`LOCK_WAIT_SECONDS`), then fail with Busy. The history never holds a plaintext email or user id: it
holds HMAC-SHA256 hashes under a key stored in the database (`_Hasher`)."""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.core.errors import Busy, SweepError

if TYPE_CHECKING:  # numpy, pyarrow and DuckDB load only where a snapshot is built, not per CLI call

    pass
from pipelines.registry.model import Identity, utc_now

SCHEMA_VERSION = 3


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
CREATE INDEX IF NOT EXISTS entries_user_id ON entries (user_id) WHERE user_id IS NOT NULL;
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
CREATE INDEX IF NOT EXISTS history_email ON history (email_hash) WHERE email_hash IS NOT NULL;
CREATE INDEX IF NOT EXISTS history_user_id ON history (user_id_hash) WHERE user_id_hash IS NOT NULL;
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

# Version 2 indexed every row's user id and both hashes with `at` (most rows have no user id, and `at`
# in the index served no query): version 3 indexes only the rows that have a value. Same tables.
_MIGRATE_V2 = """
DROP INDEX IF EXISTS entries_user_id;
DROP INDEX IF EXISTS history_email;
DROP INDEX IF EXISTS history_user_id;
"""

# Public field names (Optimizely style) -> column, for filtering and sorting.


class _Hasher:
    """HMAC-SHA256 (RFC 2104) under the registry's key, as hex. The key's inner and outer SHA-256 states
    are computed once, so a value costs two state copies and two short updates: a third of
    `hmac.digest`, which sets the key up again on every call (10M hashes on a bulk import)."""

    def __init__(self, key: bytes):
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __call__(self, value: str | None) -> str | None:
        if value is None:
            return None
        inner = self._inner.copy()
        inner.update(value.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def many(self, values: Iterable[str | None]) -> list[str | None]:
        """`[self(v) for v in values]`, with the per-call look-ups hoisted out of the loop."""
        inner0, outer0 = self._inner, self._outer
        out: list[str | None] = []
        append = out.append
        for value in values:
            if value is None:
                append(None)
                continue
            inner = inner0.copy()
            inner.update(value.encode())
            outer = outer0.copy()
            outer.update(inner.digest())
            append(outer.hexdigest())
        return out


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


class RegistryStore:
    """The database file: one connection per thread and process, transactions, the hash key."""

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
                self._init_schema(con, self.path)
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
    def _init_schema(con: sqlite3.Connection, path: Path) -> None:
        """Create the schema, or migrate an older file to it (automatically, in one transaction: a
        crash leaves the file as it was). Version 2 -> 3 rebuilds three indexes (seconds per million
        history rows); docs/decisions/0301-registry-bulk-import.md."""
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("BEGIN IMMEDIATE")
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SweepError(f"{path}: blacklist database of a newer gdpr-sweep (schema {version}, this "
                                 f"one reads {SCHEMA_VERSION}); upgrade gdpr-sweep")
            if version != SCHEMA_VERSION:
                columns = {r[1] for r in con.execute("PRAGMA table_info(history)")}
                migrate = bool(columns) and "outcome" not in columns
                if migrate:
                    for statement in _MIGRATE_V1.strip().split(";\n"):
                        con.execute(statement)
                for statement in _MIGRATE_V2.strip().split(";\n"):  # any older file: the indexes of now
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

    def transaction(self, write: bool = False) -> AbstractContextManager[sqlite3.Connection]:
        """One transaction on the registry's file, for the stores that keep their own tables in it
        (`pipelines/registry/links.py`, `pipelines/registry/holds.py`): this thread's connection, the
        lock handling (`BEGIN IMMEDIATE` when `write`), `synchronous = FULL` and `secure_delete`, and
        one-line errors; COMMIT at the end, ROLLBACK when the block raises."""
        return self._connect(write)

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
