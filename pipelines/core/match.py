"""§3: which rows a sweep removes, computed set-based in DuckDB.

Input: the blacklist entries and, per dataset, the Parquet files to check. Output: per file the
sorted row numbers to drop, with counts per reason and per entry. Only identity columns are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config.settings import DatasetConfig
from pipelines.core import sql
from pipelines.core.errors import DataFileError, SchemaError
from pipelines.core.holds import HELD_SCHEMA
from pipelines.core.identity import email_key, id_key, scope_key
from pipelines.core.model import NEVER_VERIFIED, DatasetInput, DatasetMatches, Entry, MatchResult
from pipelines.core.schemas import read_schema, read_schemas

REASONS = {1: "email", 2: "user_id", 3: "linked_device"}
_RESERVED = {"file_index", "file_row_number"}
UNKNOWN_ADDED = 2**62
"""The `added` version of an entry whose addition is not on record: it is checked against every file."""
ENTRY_SCHEMA = pa.schema([("bid", pa.string()), ("email", pa.string()), ("user_id", pa.string()),
                          ("scope", pa.string()), ("added", pa.int64())])
"""`added`: the blacklist version that added the entry (incremental sweeps), else UNKNOWN_ADDED."""
"""The `verified` version of a file no sweep has checked yet (a new raw snapshot): every entry applies."""
LINKED_SCHEMA = pa.schema([("device", pa.string()), ("scope", pa.string()), ("bid", pa.string())])
HITS_SCHEMA = pa.schema([("dataset", pa.string()), ("file", pa.int64()), ("row", pa.int64()), ("bid", pa.string()),
                         ("rank", pa.int8()), ("entry_scope", pa.string()), ("device_id", pa.string()),
                         ("device_ids", pa.list_(pa.string())), ("links", pa.bool_())])
"""One matched (row, entry) pair: `file` indexes the dataset input's files, `rank` is the §3 rule."""


def entries_table(entries: Iterable[Entry]) -> pa.Table:
    rows = [(e.blacklist_id, email_key(e.email), id_key(e.user_id), scope_key(e.scope), UNKNOWN_ADDED)
            for e in entries]
    return pa.Table.from_pylist([dict(zip(ENTRY_SCHEMA.names, r, strict=True)) for r in rows], schema=ENTRY_SCHEMA)


def normalised_entries(entries: pa.Table) -> pa.Table:
    """Entries (ENTRY_SCHEMA) with every email and user id in the current normalisation (docs/spec.md
    §2). A registry stores them normalised as of when they were added; an entry stored under an older
    normalisation (NFC, no zero-width trimming) is brought up to date here. ASCII values are stored
    in their final form by every version, so only non-ASCII ones are recomputed."""
    for name, key in (("email", email_key), ("user_id", id_key)):
        column = entries.column(name)
        ascii_ = pc.fill_null(pc.string_is_ascii(column), True)
        if pc.all(ascii_).as_py():
            continue
        values = [v if ok else key(v) for v, ok in zip(column.to_pylist(), ascii_.to_pylist(), strict=True)]
        entries = entries.set_column(entries.schema.get_field_index(name), name, pa.array(values, pa.string()))
    return entries


def with_versions(entries: pa.Table, added: Mapping[str, int] | None) -> pa.Table:
    """`entries` (ENTRY_SCHEMA) plus an `added` column: the blacklist version each entry was added at
    (`Registry.entry_versions()`); an id missing from `added` is checked against every file."""
    if "added" in entries.column_names:
        entries = entries.drop_columns(["added"])
    added = added or {}
    column = pa.array([added.get(bid, UNKNOWN_ADDED) for bid in entries.column("bid").to_pylist()], pa.int64())
    return entries.append_column("added", column)


def connect(memory_limit: str = "1GB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute("SET memory_limit = ?", [memory_limit])
    if threads:
        con.execute("SET threads = ?", [threads])
    sql.register_functions(con)  # the identity normalisation's non-ASCII branch (pipelines/core/sql.py)
    return con


def find_matches(
    con: duckdb.DuckDBPyConnection,
    entries: pa.Table,
    inputs: Sequence[DatasetInput],
    link_through_events: bool = True,
    extra_linked: pa.Table | None = None,
    links_only: bool = False,
    identity_hits: pa.Table | None = None,
    held: pa.Table | None = None,
) -> MatchResult:
    """Apply §3 to every dataset at once (profiles link devices that events then lose).

    `links_only`: stop after rule 3's first half and return `linked_devices` and the `identity_hits`
    (no device scan, no rows to drop), for a first pass that gathers links across partitions
    (pipelines/datasets/scaleout.py). `identity_hits`: that first pass's hits for the same `inputs`, used
    instead of scanning the identity columns again. `held`: the active retention holds
    (`pipelines.core.holds.held_table`); rows whose only matches are held (entry, dataset) pairs are kept
    and counted in `held_by_entry` instead of `drops`.
    """
    if "added" not in entries.column_names:
        entries = with_versions(entries, None)
    con.register("entries", entries)
    con.register("extra_linked", extra_linked if extra_linked is not None else LINKED_SCHEMA.empty_table())
    con.register("prior_hits", identity_hits if identity_hits is not None else HITS_SCHEMA.empty_table())
    con.execute(sql.CREATE_HITS)
    con.execute(sql.INSERT_PRIOR_HITS)
    newest = max(entries.column("added").to_pylist(), default=NEVER_VERIFIED)
    scans = {}
    for ds in inputs:
        if not ds.files:
            continue
        scans[ds.config.name] = _scan_sql(ds)
        if identity_hits is not None or min(ds.verified_list()) >= newest:
            continue  # hits given by pass 1, or every file verified against every entry: nothing to scan
        links = ds.config.kind == "profiles" or link_through_events
        _scan(con, ds, sql.create_candidates(scans[ds.config.name]),
              {"files": _paths(ds), "oldest": min(ds.verified_list())})
        con.execute(sql.INSERT_IDENTITY_HITS, {"dataset": ds.config.name, "links": links,
                                               "verified": ds.verified_list()})
    con.execute(sql.CREATE_LINKED)
    any_linked = not links_only and con.execute(sql.ANY_LINKED).fetchall()[0][0]
    for ds in inputs:
        if any_linked and ds.config.kind == "events" and ds.config.device_columns and ds.files:
            devices = sql.device_rows(scans[ds.config.name], ds.config.device_id is not None,
                                      ds.config.device_ids is not None)
            _scan(con, ds, sql.INSERT_DEVICE_HITS.format(devices=devices),
                  {"files": _paths(ds), "dataset": ds.config.name})
    _apply_holds(con, held if held is not None and not links_only else HELD_SCHEMA.empty_table())
    result = {ds.config.name: DatasetMatches() if links_only else _collect(con, ds) for ds in inputs}
    linked = con.sql(sql.LINKED_DEVICES).to_arrow_table().cast(LINKED_SCHEMA)
    hits = con.sql(sql.IDENTITY_HITS).to_arrow_table().cast(HITS_SCHEMA)
    for name in ("entries", "extra_linked", "prior_hits", "held"):
        con.unregister(name)
    return MatchResult(datasets=result, linked_devices=linked, identity_hits=hits)


def may_match(con: duckdb.DuckDBPyConnection, entries: pa.Table, inputs: Sequence[DatasetInput],
              linked: pa.Table) -> bool:
    """Whether `find_matches(con, entries, inputs, extra_linked=linked, ...)` could match any row: one
    scan per dataset of its identity columns, true when a row's email or user id is an entry's or, in
    an events dataset with device columns, one of its devices is in `linked`, whatever the scopes and
    retention holds. False proves `find_matches` matches nothing: with no identity hit no device is
    linked beyond `linked`, and a device hit needs a linked device. Verification's common case (clean
    outputs) then costs one scan instead of an identity scan and a device scan."""
    con.register("entries", entries)
    con.register("maybe_linked", linked)
    try:
        con.execute(sql.SUSPECT_DEVICES)
        for ds in inputs:
            if not ds.files:
                continue
            devices = (sql.device_test(ds.config.device_id is not None, ds.config.device_ids is not None)
                       if ds.config.kind == "events" else "false")
            found = _scan(con, ds, sql.COUNT_SUSPECTS.format(scan=sql.normalised(_scan_sql(ds)), devices=devices),
                          {"files": _paths(ds)})
            if found[0][0]:
                return True
        return False
    finally:
        con.unregister("entries")
        con.unregister("maybe_linked")


def _apply_holds(con: duckdb.DuckDBPyConnection, held: pa.Table) -> None:
    """Move the hits of rows that only held (entry, dataset) pairs match to `held_hits`."""
    con.register("held", held)
    if held.num_rows:
        con.execute(sql.CREATE_HELD_HITS)
        con.execute(sql.DELETE_HELD_HITS)
    else:
        con.execute(sql.CREATE_NO_HELD_HITS)


_DUCKDB_FILE_RE = re.compile(r'Parquet file "([^"]+)"')


def _scan(con: duckdb.DuckDBPyConnection, ds: DatasetInput, statement: str,
          params: dict[str, object]) -> list[tuple[Any, ...]]:
    """Run a statement that reads the dataset's files and return its rows; a file DuckDB cannot decode becomes a
    DataFileError naming the dataset and file. DuckDB's own message is not repeated: it can quote
    the offending value, which may be a person's email (tests/reliability/test_hostile_input.py)."""
    try:
        return con.execute(statement, params).fetchall()
    except duckdb.Error as exc:
        text = str(exc)
        found = _DUCKDB_FILE_RE.search(text)
        where = f"dataset {ds.config.name!r}, file {found.group(1)}" if found else f"dataset {ds.config.name!r}"
        what = ("a text column holds bytes that are not valid UTF-8" if "string encoding" in text
                else f"DuckDB cannot read the data ({type(exc).__name__})")
        raise DataFileError(f"{where}: {what}; repair or remove the file and run again") from None


def _paths(ds: DatasetInput) -> list[str]:
    return [str(p) for p in ds.files.values()]


def _collect(con: duckdb.DuckDBPyConnection, ds: DatasetInput) -> DatasetMatches:
    if not ds.files:
        return DatasetMatches()
    params = {"dataset": ds.config.name}
    relpaths = list(ds.files)
    drops = {relpaths[file]: np.asarray(rows, dtype=np.int64)
             for file, rows in con.execute(sql.ROWS_TO_DROP, params).fetchall()}
    by_reason = {REASONS[rank]: n for rank, n in con.execute(sql.REMOVED_BY_REASON, params).fetchall()}
    by_entry = dict(con.execute(sql.REMOVED_BY_ENTRY, params).fetchall())
    held = dict(con.execute(sql.HELD_BY_ENTRY, params).fetchall())
    return DatasetMatches(drops=drops, by_reason=by_reason, by_entry=by_entry, held_by_entry=held)


# ---------------------------------------------------------------------------------------------
# Schema checks: every configured column exists in every file, with a usable type.

_TEXT = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return any(check(t) for check in _TEXT)


def _is_id(t: pa.DataType) -> bool:
    return _is_text(t) or pa.types.is_integer(t)


def _is_id_list(t: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t)) and _is_id(t.value_type)


_ROLE_TYPES = {
    "email": (_is_text, "a string"),
    "scope": (_is_text, "a string"),
    "user_id": (_is_id, "a string or integer"),
    "device_id": (_is_id, "a string or integer"),
    "device_ids": (_is_id_list, "a list of strings or integers"),
}


def resolve_column(schema: pa.Schema, dotted: str, where: str) -> list[tuple[str, bool]]:
    """Walk a dotted path through structs and maps; raise SchemaError naming `where` and the column."""
    parts = dotted.split(".")
    segments: list[tuple[str, bool]] = []
    if parts[0] not in schema.names:
        raise SchemaError(f"{where}: configured column {dotted!r} is missing")
    current: pa.DataType = schema.field(parts[0]).type
    segments.append((parts[0], False))
    for part in parts[1:]:
        if pa.types.is_struct(current) and current.get_field_index(part) >= 0:
            current = current.field(part).type
            segments.append((part, False))
        elif pa.types.is_map(current) and _is_text(current.key_type):
            current = current.item_type
            segments.append((part, True))
        else:
            raise SchemaError(f"{where}: configured column {dotted!r} is missing")
    return segments


def check_schema(config: DatasetConfig, path: Path, schema: pa.Schema | None = None) -> dict[str, list[tuple[str, bool]]]:
    """Validate one file (its `schema`, if already read) against the dataset's configuration; return
    the resolved column paths."""
    schema = schema if schema is not None else read_schema(path)
    where = f"dataset {config.name!r}, file {path}"
    reserved = _RESERVED & set(schema.names)
    if reserved:
        raise SchemaError(f"{where}: column name(s) {sorted(reserved)} are reserved by DuckDB; rename them")
    resolved = {}
    for role, dotted in config.identity_columns.items():
        segments = resolve_column(schema, dotted, where)
        leaf = leaf_type(schema, segments)
        check, expected = _ROLE_TYPES[role]
        if not check(leaf):
            raise SchemaError(f"{where}: column {dotted!r} ({role}) has type {leaf}, expected {expected}")
        resolved[role] = segments
    return resolved


def leaf_type(schema: pa.Schema, segments: Sequence[tuple[str, bool]]) -> pa.DataType:
    """The type at the end of a resolved column path (`resolve_column`): a struct field's or a map value's."""
    current = schema.field(segments[0][0]).type
    for name, in_map in segments[1:]:
        current = current.item_type if in_map else current.field(name).type
    return current


def check_dataset(ds: DatasetInput) -> dict[str, list[tuple[str, bool]]]:
    """Check every file; the column paths must resolve the same way (struct vs map) in all of them,
    and every file must have the same schema as the first (docs/reliability.md: a sibling with other
    columns or types would make the cleaned dataset unreadable as one table)."""
    first: dict[str, list[tuple[str, bool]]] | None = None
    first_path: Path | None = None
    paths = list(ds.files.values())
    schemas = read_schemas(paths)  # each footer read once (on S3, in parallel)
    if not ds.table_schema:  # a table format's schema is its log's; writers vary view types per file
        check_sibling_schemas(ds.config.name, paths, schemas)
    for path, schema in zip(paths, schemas, strict=True):
        resolved = check_schema(ds.config, path, schema)
        if first is None:
            first, first_path = resolved, path
        elif resolved != first:
            raise SchemaError(f"dataset {ds.config.name!r}, file {path}: identity columns are nested "
                              f"differently than in {first_path}; make the files' schemas agree")
    return first or {}


def check_files(config: DatasetConfig, paths: Sequence[Path]) -> None:
    """Before anything is matched or written: each file has the configured columns with usable types,
    and every file has the first file's schema."""
    paths = list(paths)
    schemas = read_schemas(paths)  # each footer read once
    for path, schema in zip(paths, schemas, strict=True):
        check_schema(config, path, schema)
    check_sibling_schemas(config.name, paths, schemas)


def check_sibling_schemas(dataset: str, paths: Iterable[Path], schemas: Sequence[pa.Schema] | None = None) -> None:
    """Every file of a dataset must have the first file's schema (names, types, nullability, order);
    SchemaError naming the dataset, the file and the first difference otherwise. `schemas`: the
    files' schemas, if already read."""
    first_schema: pa.Schema | None = None
    first_path: Path | None = None
    paths = list(paths)
    for path, read in zip(paths, schemas if schemas is not None else [None] * len(paths), strict=True):
        schema = (read if read is not None else read_schema(path)).remove_metadata()
        if first_schema is None:
            first_schema, first_path = schema, path
        elif not schema.equals(first_schema):
            raise SchemaError(f"dataset {dataset!r}, file {path}: schema differs from {first_path} "
                              f"({_schema_difference(first_schema, schema)}); make the files' schemas agree")


def _schema_difference(expected: pa.Schema, actual: pa.Schema) -> str:
    """The first difference between two schemas, by column name (names are not personal data)."""
    for f in expected:
        if f.name not in actual.names:
            return f"column {f.name!r} is missing"
        other = actual.field(f.name)
        if not other.equals(f):
            return f"column {f.name!r} is {other.type}{'' if other.nullable else ' not null'}, expected {f.type}"
    extra = [n for n in actual.names if n not in expected.names]
    if extra:
        return f"extra column {extra[0]!r}"
    return "columns are in a different order"


def _scan_sql(ds: DatasetInput) -> str:
    resolved = check_dataset(ds)
    refs = {role: sql.column_ref(segments) for role, segments in resolved.items()}
    return sql.identity_scan(refs.get("email"), refs.get("user_id"), refs.get("scope"),
                             refs.get("device_id"), refs.get("device_ids"))
