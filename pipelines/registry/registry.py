"""The blacklist registry: an SQLite database file in WAL mode (§2).

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

The parts: `registry_model` (records, snapshot, identities), `registry_store` (the SQLite file,
transactions, keyed hashes), `registry_core` (latest-wins), `registry_cache` (the snapshot and its
cache), `registry_bulk` (feeds and imports), `registry_feed` (parsing what is imported). This module
holds the operations the CLI, the HTTP API and the flows call.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pipelines.core.errors import InputError, NotFound, SweepError
from pipelines.core.identity import (
    normalize_email,
    validate_scope,
    validate_user_id,
)

if TYPE_CHECKING:  # numpy, pyarrow and DuckDB load only where a snapshot is built, not per CLI call

    pass
from pipelines.registry.bulk import BulkOperations
from pipelines.registry.feed import command_name, parse_feed_line
from pipelines.registry.group import GroupCommit
from pipelines.registry.model import (
    _COLUMNS,
    DEFAULT_TOP,
    FIELDS,
    HISTORY_KEYS,
    MAX_WINDOW,
    SOURCES,
    Identity,
    Page,
    Record,
    Snapshot,
    _check_channel,
    format_time,
    make_identity,
    parse_time,
    utc_now,
)
from pipelines.registry.store import _Hasher, _Tx

__all__ = ["DEFAULT_TOP", "FIELDS", "MAX_WINDOW", "SOURCES", "Record", "Registry", "Snapshot", "command_name",
           "format_time", "parse_feed_line", "utc_now"]

T = TypeVar("T")


class Registry(BulkOperations):
    """The blacklist registry: the operations of §2 on one SQLite file (see the module docstring).

    `group_commit=True` (the HTTP server): the single writes `add`, `remove` and `set_status` of
    concurrent callers share commits (`pipelines/registry/group.py`, decision 0311); each call still
    returns only once its write is durable."""

    def __init__(self, path: Path, *, group_commit: bool = False):
        super().__init__(path)
        self._group = GroupCommit(self) if group_commit else None

    def close_writer(self) -> None:
        """Stop the group-commit writer thread (after the writes already queued); none: nothing to do."""
        if self._group is not None:
            self._group.close()

    def _single_write(self, job: Callable[[_Tx], T]) -> T:
        """Run one write in its own durable transaction, or in the next group commit."""
        if self._group is not None:
            return self._group.run(job)
        with self._write() as tx:
            return job(tx)

    # -- Optimizely-style operations ---------------------------------------------------------
    def add(self, email: str | None = None, user_id: str | None = None, scope: str | None = None,
            source: str = "cli") -> tuple[Record, bool]:
        """Add an entry; return (record, created). Adding an identical entry returns the existing one."""
        return self._single_write(self._add_job(email, user_id, scope, source))

    def add_later(self, email: str | None = None, user_id: str | None = None, scope: str | None = None,
                  source: str = "cli") -> Future[tuple[Record, bool]]:
        """`add` for a caller that must not block (the HTTP server's event loop): queued for the next
        group commit; the future is done once the write is durable. Invalid input raises at once."""
        if self._group is None:
            raise SweepError("add_later needs a registry opened with group_commit=True")
        return self._group.submit(self._add_job(email, user_id, scope, source))

    def _add_job(self, email: str | None, user_id: str | None, scope: str | None,
                 source: str) -> Callable[[_Tx], tuple[Record, bool]]:
        _check_channel(source)
        ident = make_identity(email, user_id, scope)

        def add_one(tx: _Tx) -> tuple[Record, bool]:
            outcome, records = self._set(tx, ident, True, tx.now, source, "add", force=True)
            return records[0], outcome == "applied"

        return add_one

    def remove(self, blacklist_id: str, channel: str = "cli") -> Record:
        """Remove (whitelist) an entry by id; NotFound when there is none. Purged data stays purged."""
        _check_channel(channel)

        def remove_one(tx: _Tx) -> Record:
            row = tx.con.execute(f"SELECT {_COLUMNS} FROM entries WHERE blacklist_id = ?", [blacklist_id]).fetchone()
            if row is None:
                raise NotFound(f"no blacklist entry with id {blacklist_id[:64]!r}")
            rec = Record(*row)
            tx.con.execute("DELETE FROM entries WHERE blacklist_id = ?", [blacklist_id])
            tx.log(tx.now, "remove", "applied", rec.blacklist_id, Identity(rec.email, rec.user_id, rec.scope),
                   channel)
            return rec

        rec = self._single_write(remove_one)
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

    def history(self, blacklist_id: str | None = None, *, email: str | None = None,
                user_id: str | None = None) -> builtins.list[dict[str, Any]]:
        """The history in order, all of it, or of one entry, or of one person (by email or user id,
        found through their keyed hashes: the history itself never holds them)."""
        where: builtins.list[str] = []
        params: builtins.list[Any] = []
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

        def set_one(tx: _Tx) -> tuple[str, dict]:
            outcome, _ = self._set(tx, ident, bool(blacklisted), when or tx.now, channel,
                                   "set" if blacklisted else "unset")
            return outcome, self._status(tx.con, ident)

        outcome, result = self._single_write(set_one)
        if not blacklisted and outcome == "applied":
            self._drop_cache()
            self._checkpoint()
        return {**result, "Outcome": outcome}

    def status(self, *, user_id: str | None = None, email: str | None = None, scope: str | None = None) -> dict:
        """Is this identity blacklisted (in `scope`, or anywhere when None), since when, through which channel."""
        ident = make_identity(email, user_id, scope)
        with self._connect() as con:
            return self._status(con, ident)
