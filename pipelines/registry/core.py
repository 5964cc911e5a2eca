"""The core of latest-wins (decision 0103): which action on an identity is the latest, and setting
an identity's status from one action."""

from __future__ import annotations

import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy, pyarrow and DuckDB load only where a snapshot is built, not per CLI call

    pass
from pipelines.registry.model import _COLUMNS, Identity, Record
from pipelines.registry.store import RegistryStore, _Hasher, _Tx


class RegistryCore(RegistryStore):
    """Latest-wins over the history: the status of an identity and setting it from one action."""

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
        on equal timestamps blacklisting wins (§2), whichever arrived first."""
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
