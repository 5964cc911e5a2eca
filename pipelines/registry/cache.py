"""The blacklist snapshot and its cache beside the database (`<db>.snapshot.arrow`), read columnar and
updated incrementally, fast at 10M entries."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy, pyarrow and DuckDB load only where a snapshot is built, not per CLI call
    import pyarrow as pa

from pipelines.registry.model import _COLUMNS, Snapshot, _record_schema
from pipelines.registry.store import SCHEMA_VERSION, RegistryStore

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


class SnapshotCache(RegistryStore):
    """The blacklist as one columnar snapshot, cached beside the database and updated incrementally."""

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
