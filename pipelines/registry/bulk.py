"""Applying many actions at once: CrossEngage feeds, Optimizely imports (all or nothing), and the
bulk insert path that keeps a 10M-entry import fast."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pipelines.core.errors import InputError

if TYPE_CHECKING:  # numpy, pyarrow and DuckDB load only where a snapshot is built, not per CLI call

    pass
from pipelines.registry.cache import SnapshotCache
from pipelines.registry.core import RegistryCore
from pipelines.registry.feed import _bad_lines, _optimizely_items, parse_feed_line, validate_items
from pipelines.registry.model import _COLUMNS, Identity, Record, _check_channel
from pipelines.registry.store import _Tx

# -- bulk paths (10M entries) --------------------------------------------------------------------
_BULK_MIN = 50_000


@contextmanager
def _collector_paused(pause: bool) -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large list is imported: the millions of tuples
    and strings it creates (none in a cycle) made it re-scan every live object again and again, about
    half of the validation's CPU time. Resumed afterwards, whatever happens."""
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _bulk_ok(con: sqlite3.Connection, n: int) -> bool:
    """A large import into an empty registry takes the bulk path (no per-item look-ups)."""
    return n >= _BULK_MIN and con.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is None


def _uuids(n: int) -> list[str]:
    """n random (version 4) UUIDs in ascending order, formatted with numpy in bulk rather than one
    `uuid4()` call each. Sorted, so that entries given no id go into `entries` in key order without a sort."""
    import numpy as np

    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    halves = raw.view(">u8")  # two big-endian 64-bit halves per row: their order is the text's order
    raw = raw[np.lexsort((halves[:, 1], halves[:, 0]))]
    hexed = np.frombuffer(raw.tobytes().hex().encode(), dtype=np.uint8).reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src in (((0, 8), (0, 8)), ((9, 13), (8, 12)), ((14, 18), (12, 16)), ((19, 23), (16, 20)),
                     ((24, 36), (20, 32))):
        out[:, dst[0]:dst[1]] = hexed[:, src[0]:src[1]]
    text = out.tobytes().decode()
    return [text[i:i + 36] for i in range(0, 36 * n, 36)]


def _first_of_each(idents: list[Identity], ids: list[str | None]) -> tuple[list[Identity], list[str | None]]:
    """Each identity once, at its first occurrence (with that item's BlacklistId)."""
    if len(set(idents)) == len(idents):  # the common case, checked in C
        return idents, ids
    first: dict[Identity, int] = {}
    for i, ident in enumerate(idents):
        first.setdefault(ident, i)
    keep = list(first.values())  # increasing: a dict keeps insertion order
    return [idents[i] for i in keep], [ids[i] for i in keep]


_ROWS = 100_000  # rows per INSERT ... SELECT
_NO_HASH = "-" * 64  # stands for a NULL hash in the packed column below

# The rows are built by SQLite from a few large parameters per 100,000 rows, not bound one by one from
# Python (binding was two thirds of the insert's CPU time): fixed-width columns (ids, hashes) packed in
# one BLOB and cut with `substr` (constant time on a BLOB), the others as one JSON array (`json_each`).
_HISTORY_ROWS = (
    "INSERT INTO history (seq, at, action, blacklist_id, email_hash, user_id_hash, scope, channel, outcome, "
    "recorded_at) SELECT ?1 + r.key, ?2, 'add', CAST(substr(?3, 36 * r.key + 1, 36) AS TEXT), "
    "nullif(CAST(substr(?4, 64 * r.key + 1, 64) AS TEXT), ?5), nullif(CAST(substr(?6, 64 * r.key + 1, 64) AS TEXT), ?5), "
    "r.value, ?7, 'applied', ?2 FROM json_each(?8) AS r")
_ENTRY_ROWS = (
    f"INSERT INTO entries ({_COLUMNS}, added_seq) SELECT CAST(substr(?1, 36 * r.key + 1, 36) AS TEXT), "
    "json_extract(r.value, '$[0]'), json_extract(r.value, '$[1]'), json_extract(r.value, '$[2]'), ?2, ?3, "
    "json_extract(r.value, '$[3]') FROM json_each(?4) AS r")


def _prepared_ahead(jobs: Sequence[tuple[str, Callable[[int], list[Any]], int]]) -> Iterator[tuple[str, list[Any]]]:
    """(statement, parameters) of each job in turn, the next job's parameters built in a helper
    thread while the caller runs the current statement: SQLite releases the GIL while it inserts, so
    hashing and packing one chunk overlaps with inserting the previous one (two cores)."""
    with ThreadPoolExecutor(1, thread_name_prefix="registry-bulk") as pool:
        ahead = pool.submit(jobs[0][1], jobs[0][2]) if jobs else None
        for k, (sql, _, _) in enumerate(jobs):
            assert ahead is not None
            params = ahead.result()
            ahead = pool.submit(jobs[k + 1][1], jobs[k + 1][2]) if k + 1 < len(jobs) else None
            yield sql, params


def _packed(values: list[str | None]) -> bytes:
    return "".join([_NO_HASH if v is None else v for v in values]).encode()


def _bulk_insert(tx: _Tx, idents: list[Identity], ids: list[str | None], channel: str) -> int:
    """Insert many entries into an empty registry: dedupe in memory, insert in key order, rebuild indexes.

    Identical to adding them one by one (one history row per entry, `added_seq` its sequence
    number), only without a look-up per item, with the rows built by SQLite from packed columns and
    the keyed hashes from the precomputed key states. The indexes are dropped first and rebuilt at
    the end (one sort each, with SQLite's sorter threads), all inside the one durable transaction of
    the import.
    """
    idents, ids = _first_of_each(idents, ids)
    generated = ids.count(None)
    fresh = iter(_uuids(generated))
    bids = [bid or next(fresh) for bid in ids]
    if len(set(bids)) != len(bids):
        raise InputError("Optimizely list: the same BlacklistId is given to different entries")
    now, con, n = tx.now, tx.con, len(bids)
    emails, user_ids, scopes = ([i.email for i in idents], [i.user_id for i in idents], [i.scope for i in idents])
    base = con.execute("SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'history'), 0), "
                       "coalesce((SELECT max(seq) FROM history), 0))").fetchone()[0]
    indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                          "AND tbl_name IN ('entries', 'history') AND sql IS NOT NULL").fetchall()
    for name, _ in indexes:
        con.execute(f'DROP INDEX "{name}"')
    con.execute("PRAGMA cache_size = -262144")  # 256 MiB while bulk loading

    def history_rows(lo: int) -> list[Any]:
        hi = min(lo + _ROWS, n)
        return [base + 1 + lo, now, "".join(bids[lo:hi]).encode(), _packed(tx.hash.many(emails[lo:hi])), _NO_HASH,
                _packed(tx.hash.many(user_ids[lo:hi])), channel, json.dumps(scopes[lo:hi], ensure_ascii=False)]

    # Primary-key order: appends, not page splits. Generated ids come sorted; with given ids, sort the
    # positions by id (sorting the row tuples costs four times as much).
    order: Sequence[int] = range(n) if generated == n else sorted(range(n), key=bids.__getitem__)

    def entry_rows(lo: int) -> list[Any]:
        part = order[lo:lo + _ROWS]
        rows = [(emails[i], user_ids[i], scopes[i], base + 1 + i) for i in part]
        return ["".join([bids[i] for i in part]).encode(), now, channel, json.dumps(rows, ensure_ascii=False)]

    starts = range(0, n, _ROWS)
    jobs = [(_HISTORY_ROWS, history_rows, lo) for lo in starts] + [(_ENTRY_ROWS, entry_rows, lo) for lo in starts]
    for sql, params in _prepared_ahead(jobs):
        con.execute(sql, params)
    con.execute("PRAGMA threads = 2")  # the index sorts may use a helper thread
    try:
        for _, statement in indexes:
            con.execute(statement)
    finally:
        con.execute("PRAGMA threads = 0")
    return n


class BulkOperations(RegistryCore, SnapshotCache):
    """Feeds and imports applied all or nothing, and the export."""

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
        with _collector_paused(len(items) >= _BULK_MIN):
            return self._import_items(items, channel)

    def _import_items(self, items: list[Any], channel: str) -> dict:
        idents, ids, errors = validate_items(items)
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
