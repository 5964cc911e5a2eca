"""Remembered device links, kept with their entries in the blacklist registry (§3 rule 3).

Table `entry_links` in the registry's SQLite file: one row per (BlacklistId, device, via), where
`via` is `profile` or `event` (what kind of row made the link). Device ids are stored as the
matcher compares them and are protected like the entry's own email: they live only in the registry
file (mode 0600, `secure_delete` on), never in the history, a report, a log line or an error message.

Whitelisting releases them: a trigger deletes an entry's links in the same transaction that
deletes the entry (every way an entry is removed, CLI, HTTP, feed, events, goes through
`DELETE FROM entries`), and the registry checkpoints its WAL after a removal. Links are recorded
only for entries that still exist when they are written, and read only joined with the current
entries, so a link can never outlive its entry, even in a registry whose trigger was lost.

docs/decisions/0211-remembered-device-links.md: when the sweep, the ingest guard and ClearUserData
record links, and why recording them before the rows are removed cannot lose one on a crash.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pipelines.registry.registry import Registry, utc_now

if TYPE_CHECKING:
    import pyarrow as pa

    from pipelines.config.settings import DatasetConfig, Settings

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS entry_links (
        blacklist_id TEXT NOT NULL,
        device TEXT NOT NULL,
        via TEXT NOT NULL CHECK (via IN ('profile', 'event')),
        recorded_at TEXT NOT NULL,
        run_id TEXT,
        PRIMARY KEY (blacklist_id, device, via)
    ) WITHOUT ROWID""",
    """CREATE TRIGGER IF NOT EXISTS entry_links_release AFTER DELETE ON entries
    BEGIN
        DELETE FROM entry_links WHERE blacklist_id = old.blacklist_id;
    END""",
)
_INSERT = ("INSERT OR IGNORE INTO entry_links (blacklist_id, device, via, recorded_at, run_id) "
           "SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM entries WHERE blacklist_id = ?)")
_ORPHANS = "DELETE FROM entry_links WHERE blacklist_id NOT IN (SELECT blacklist_id FROM entries)"
_CURRENT = ("SELECT l.blacklist_id, l.device, l.via FROM entry_links AS l "
            "JOIN entries AS e ON e.blacklist_id = l.blacklist_id ORDER BY 1, 2, 3")


def _exists(con: sqlite3.Connection) -> bool:
    return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entry_links'").fetchone() \
        is not None


class LinkStore:
    """The links of one registry. Uses the registry's connections and transactions (its lock
    handling, error messages and `secure_delete`), so it shares its durability: a recorded link is
    on disk when `record` returns (`synchronous = FULL`)."""

    def __init__(self, registry: Registry):
        self.registry = registry

    def load(self) -> pa.Table:
        """Every link of a current entry (`pipelines.core.links.LINK_SCHEMA`), in one read transaction."""
        import pyarrow as pa

        from pipelines.core.links import LINK_SCHEMA

        with self.registry.transaction() as con:
            rows = con.execute(_CURRENT).fetchall() if _exists(con) else []
        columns = list(zip(*rows, strict=True)) if rows else [(), (), ()]
        return pa.Table.from_arrays([pa.array(c, pa.string()) for c in columns], schema=LINK_SCHEMA)

    def record(self, links: pa.Table, run_id: str | None = None) -> int:
        """Add the links (LINK_SCHEMA) of entries that still exist, in one transaction; return how
        many were new. A link of an entry removed meanwhile is not kept."""
        rows = links.select(["bid", "device", "via"]).to_pylist() if links.num_rows else []
        now = utc_now()
        with self.registry.transaction(write=True) as con:
            for statement in _SCHEMA:
                con.execute(statement)
            con.execute(_ORPHANS)  # belt and braces: the trigger already releases removed entries' links
            before = con.total_changes
            con.executemany(_INSERT, ((r["bid"], r["device"], r["via"], now, run_id, r["bid"]) for r in rows))
            return con.total_changes - before

    def count(self, blacklist_id: str | None = None) -> int:
        """How many links are kept (for one entry, or in all): a number, never the devices."""
        with self.registry.transaction() as con:
            if not _exists(con):
                return 0
            if blacklist_id is None:
                return int(con.execute("SELECT count(*) FROM entry_links").fetchone()[0])
            return int(con.execute("SELECT count(*) FROM entry_links WHERE blacklist_id = ?",
                                   [blacklist_id]).fetchone()[0])


def remembered_links(settings: Settings, entries: pa.Table) -> pa.Table:
    """The remembered links of the entries being matched, as the matcher's `extra_linked`."""
    from pipelines.core.links import remembered

    stored = LinkStore(Registry(settings.blacklist_db)).load()
    return remembered(stored, entries, settings.link_devices_through_events)


def remember_found(settings: Settings, hits: Iterable[pa.Table | None], configs: Iterable[DatasetConfig],
                   run_id: str) -> int:
    """Record the links a match's identity hits make (`MatchResult.identity_hits`); return how many were new."""
    from pipelines.core.links import found_links

    found = found_links(hits, {c.name: c.kind for c in configs})
    return LinkStore(Registry(settings.blacklist_db)).record(found, run_id) if found.num_rows else 0
