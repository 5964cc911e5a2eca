"""Residual scan (issue 18): is a blacklisted person anywhere else in the lake?

The sweep proves that the configured identity columns hold no blacklisted person. This scan searches
every string value of a Parquet file (top-level columns, struct fields, list elements, map keys and
values, recursively) for

- an entry's email, as a whole value or inside longer text (JSON, URLs, `mailto:`, free text), with
  percent-encoding (also doubly encoded) and case handled;
- an entry's user id and its linked device ids, as whole values.

Each file is read once (`open_input` is the only place a file is opened), row group by row group,
whatever the number of entries: email-shaped tokens are extracted with one regular expression,
normalised, and joined against the blacklist (never one pattern per entry). Whole values are
normalised with the project's identity rules (`pipelines.core.identity`) before they are compared.

A finding names the column and counts rows per BlacklistId; the value itself is never returned,
logged or reported. Nothing is deleted here (docs/decisions/0261-residual-scan.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.assurance.residual_sql import (
    EMAIL_HITS,
    EMAIL_PARAMS,
    ID_HITS,
    prefilter_pattern,
    register,
    scope_keys,
)
from pipelines.core.errors import DataFileError
from pipelines.core.identity import id_key, scope_key
from pipelines.core.model import Entry

BATCH_ROWS = 65_536
LEAF_SCHEMA = pa.schema([("col", pa.string()), ("row", pa.int64()), ("scope", pa.string()), ("value", pa.string())])
ENTRY_EMAILS = pa.schema([("bid", pa.string()), ("email", pa.string()), ("scope", pa.string())])
ENTRY_IDS = pa.schema([("bid", pa.string()), ("id", pa.string()), ("kind", pa.string()), ("scope", pa.string())])
DEFAULT_SCOPE_KEY = "defaultscope"


def open_input(path: Path | str, fs: Any = None) -> BinaryIO:
    """The I/O boundary: every byte the scan reads comes through one call of this per file. `fs`: the
    fsspec file system of an object-storage dataset (its objects are read through it), None locally."""
    return fs.open(str(path), "rb") if fs is not None else open(path, "rb")


@dataclass(frozen=True)
class Needles:
    """What to look for: entries' normalised emails, user ids and linked device ids (with scopes)."""

    emails: pa.Table
    ids: pa.Table

    @property
    def empty(self) -> bool:
        return self.emails.num_rows == 0 and self.ids.num_rows == 0


def needles(entries: Sequence[Entry], devices: Sequence[tuple[str, str]] = ()) -> Needles:
    """`entries` as the registry gives them (emails already normalised); `devices` is (BlacklistId,
    device id) pairs: remembered links and the devices linked in this run. A device is searched in
    the scopes its entry covers."""
    scopes = {e.blacklist_id: scope_key(e.scope) for e in entries}
    emails = [{"bid": e.blacklist_id, "email": e.email, "scope": scopes[e.blacklist_id]} for e in entries if e.email]
    ids = [{"bid": e.blacklist_id, "id": id_key(e.user_id), "kind": "user_id", "scope": scopes[e.blacklist_id]}
           for e in entries if id_key(e.user_id)]
    ids += [{"bid": bid, "id": id_key(device), "kind": "device_id", "scope": scopes[bid]}
            for bid, device in sorted(set(devices)) if bid in scopes and id_key(device)]
    return Needles(pa.Table.from_pylist(emails, schema=ENTRY_EMAILS), pa.Table.from_pylist(ids, schema=ENTRY_IDS))


@dataclass(frozen=True)
class FileScan:
    """One file's result: rows read, string values searched, and rows found per (column, match, BlacklistId)."""

    path: str
    rows: int
    values: int
    hits: dict[tuple[str, str, str], int] = field(default_factory=dict)


# -- flattening every string value of a batch ------------------------------------------------------


def string_leaves(array: pa.Array, path: str, rows: pa.Array) -> Iterator[tuple[str, pa.Array, pa.Array]]:
    """(column path, row numbers, values) for every string value under `array`, recursively.

    Paths use the configuration's dots for struct fields (`User.Email`), `[]` for list elements
    (`Tags[]`), `{key}` / `{value}` for map keys and values (`Attrs{value}`)."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        yield from string_leaves(array.dictionary_decode(), path, rows)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        array = array.cast(pa.string())  # first: pyarrow 26 cannot filter or take string_view (delta-rs writes it)
        valid = pc.is_valid(array)
        yield path, rows.filter(valid), array.filter(valid)
    elif pa.types.is_struct(kind):
        for i, child in enumerate(array.flatten()):  # parent nulls applied to the children
            yield from string_leaves(child, f"{path}.{kind.field(i).name}", rows)
    elif pa.types.is_map(kind):
        parents, window = _children(array, rows)
        yield from string_leaves(array.keys.slice(*window), f"{path}{{key}}", parents)
        yield from string_leaves(array.items.slice(*window), f"{path}{{value}}", parents)
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind) \
            or pa.types.is_list_view(kind) or pa.types.is_large_list_view(kind):
        if pa.types.is_list_view(kind) or pa.types.is_large_list_view(kind):
            array = array.cast(pa.large_list(kind.value_type))
        if pa.types.is_fixed_size_list(kind):
            array = array.cast(pa.list_(kind.value_type))
        parents, window = _children(array, rows)
        yield from string_leaves(array.values.slice(*window), f"{path}[]", parents)


def _children(array: pa.Array, rows: pa.Array) -> tuple[pa.Array, tuple[int, int]]:
    """For a list or map array: each child value's row, and the window of the child array in use.
    (From the offsets: pyarrow 26's `value_parent_indices` aborts the process on map arrays.)"""
    offsets = np.asarray(array.offsets, dtype=np.int64)
    parents = np.repeat(np.arange(len(array), dtype=np.int64), np.diff(offsets))
    return pc.take(rows, pa.array(parents)), (int(offsets[0]), int(offsets[-1] - offsets[0]))


def _scope_values(batch: pa.RecordBatch, scope_column: str | None) -> pa.Array | None:
    """The batch's scope per row (raw text), following a dotted path through structs and maps."""
    if scope_column is None:
        return None
    first, *rest = scope_column.split(".")
    array = batch.column(batch.schema.get_field_index(first))
    for name in rest:
        if pa.types.is_struct(array.type):
            array = array.flatten()[array.type.get_field_index(name)]
        else:  # a string-keyed map: the value under `name`
            array = pc.map_lookup(array, pa.scalar(name, array.type.key_type), "first")
    return scope_keys(array)


def leaves_table(batch: pa.RecordBatch, offset: int, scope_column: str | None, scope_mode: str) -> pa.Table:
    """Every string value of `batch` as rows (col, row, scope, value); `row` counts from the file's start.

    `scope_mode`: `column` (the dataset's scope column), `default` (a dataset without one: every row
    is DefaultScope), `unscoped` (a folder that is no dataset: only entries for every scope apply)."""
    rows = pa.array(range(offset, offset + batch.num_rows), pa.int64())
    local = pa.array(range(batch.num_rows), pa.int64())
    scopes = _scope_values(batch, scope_column) if scope_mode == "column" else None
    parts = []
    for i, name in enumerate(batch.schema.names):
        for col, idx, values in string_leaves(batch.column(i), name, local):
            if scopes is not None:
                scope = pc.take(scopes, idx)
            else:
                scope = pa.nulls(len(idx), pa.string()) if scope_mode == "unscoped" \
                    else pa.array([DEFAULT_SCOPE_KEY] * len(idx), pa.string())
            parts.append(pa.table({"col": pa.array([col] * len(idx), pa.string()),
                                   "row": pc.take(rows, idx), "scope": scope, "value": values}, schema=LEAF_SCHEMA))
    return pa.concat_tables(parts) if parts else LEAF_SCHEMA.empty_table()


# -- one file, one pass --------------------------------------------------------------------------


def scan_file(con: duckdb.DuckDBPyConnection, path: Path | str, found: Needles, scope_column: str | None,
              scope_mode: str, fs: Any = None) -> FileScan:
    """Search one Parquet file, read once, row group by row group. DataFileError names an unreadable file."""
    hits: dict[tuple[str, str, str], int] = {}
    rows = values = 0
    pattern = prefilter_pattern()
    try:
        with open_input(path, fs) as fh:
            reader = pq.ParquetFile(fh)
            if scope_mode == "column" and scope_column and scope_column.split(".")[0] not in reader.schema_arrow.names:
                scope_mode = "default"  # the sweep already refuses such a file; here: count it as DefaultScope
            for batch in reader.iter_batches(batch_size=BATCH_ROWS):
                leaves = leaves_table(batch, rows, scope_column, scope_mode)
                rows += batch.num_rows
                values += leaves.num_rows
                if leaves.num_rows:
                    _match(con, leaves, pattern, hits)
    except (OSError, pa.ArrowException) as exc:
        raise DataFileError(f"{path}: not a readable Parquet file ({type(exc).__name__}); the residual scan "
                            "could not search it") from None
    return FileScan(str(path), rows, values, hits)


def _match(con: duckdb.DuckDBPyConnection, leaves: pa.Table, pattern: str,
           hits: dict[tuple[str, str, str], int]) -> None:
    """Add this batch's rows found per (column, match, BlacklistId) to `hits`."""
    mailish = leaves.filter(pc.match_substring_regex(leaves.column("value"), pattern))
    con.register("leaves", leaves)
    con.register("mailish", mailish)
    try:
        for sql, params in ((EMAIL_HITS, EMAIL_PARAMS), (ID_HITS, {})):
            for col, match, bid, n in con.execute(sql, params).fetchall():
                hits[(col, match, bid)] = hits.get((col, match, bid), 0) + int(n)
    finally:
        con.unregister("leaves")
        con.unregister("mailish")


def connect_for(found: Needles, memory_limit: str = "1GB") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection holding the needles (`entry_emails`, `entry_ids`) and the normalising functions."""
    con = duckdb.connect(config={"memory_limit": memory_limit, "autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    register(con)
    con.register("entry_emails_in", found.emails)
    con.register("entry_ids_in", found.ids)
    con.execute("CREATE TEMP TABLE entry_emails AS SELECT * FROM entry_emails_in")
    con.execute("CREATE TEMP TABLE entry_ids AS SELECT * FROM entry_ids_in")
    con.unregister("entry_emails_in")
    con.unregister("entry_ids_in")
    return con
