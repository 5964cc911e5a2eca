"""The decoding search of an Iceberg table's location: does any file still hold one of these emails?

Parquet pages and Avro blocks are compressed, so a byte search proves nothing (docs/environment.md):
every file is decoded. Parquet data files: every text value of every row group (nested, list and map
columns included), footer statistics and key-value metadata. Avro manifests and manifest lists: every
field of every record, column bounds decoded as text (with Iceberg's `truncate(16)` form of a bound).
JSON metadata: parsed. Anything else: as text. Results name files, never the value found.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.datasets.iceberg_files import listing, strip

TRUNCATED_MIN = 16
"""Iceberg's default metrics mode `truncate(16)` keeps the first 16 characters of a string bound: a
bound at least this long that starts a needle is that needle's value, cut."""
_EMAIL_TOKEN = re.compile(r"[^\s<>()\[\]{},;:\"'`|\\/]+@[^\s<>()\[\]{},;:\"'`|\\/]+")


class Needles:
    """Lower-cased emails to look for in decoded values: whole values, email-like tokens inside text,
    and (for column bounds) Iceberg's truncated bounds of them."""

    def __init__(self, emails: Iterable[str]) -> None:
        self.emails = frozenset(e.strip().lower() for e in emails if e and e.strip())
        self.prefixes = frozenset(e[:n] for e in self.emails for n in range(TRUNCATED_MIN, len(e)))

    def __bool__(self) -> bool:
        return bool(self.emails)

    def in_text(self, value: str) -> bool:
        text = value.strip().lower()
        if text in self.emails:
            return True
        return "@" in text and any(t.strip(".") in self.emails for t in _EMAIL_TOKEN.findall(text))

    def in_bound(self, value: bytes) -> bool:
        text = value.decode("utf-8", "replace").lower()
        if self.in_text(text) or text in self.prefixes:
            return True
        # an upper bound is truncated and its last character incremented
        return len(text) >= TRUNCATED_MIN and (text[:-1] + chr(max(ord(text[-1]) - 1, 0))) in self.prefixes


def _walk(value: Any) -> Iterator[Any]:
    """Every leaf of a decoded Avro record or JSON document (records, maps, lists)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str | bytes):
            yield v
        elif isinstance(v, Mapping) or hasattr(v, "items"):
            for k, item in v.items():
                stack += [k, item]
        elif isinstance(v, list | tuple) or hasattr(v, "_data"):
            stack += list(v._data if hasattr(v, "_data") else v)


def _avro_hit(fs: fsspec.AbstractFileSystem, path: str, needles: Needles) -> bool:
    for record in avro_records(fs, path):
        for leaf in _walk(record):
            if isinstance(leaf, bytes) and needles.in_bound(leaf):
                return True
            if isinstance(leaf, str) and needles.in_text(leaf):
                return True
    return False


def _json_hit(data: bytes, needles: Needles) -> bool:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        document = json.loads(data)
    except ValueError:
        return _bytes_hit(data, needles)
    return any(isinstance(leaf, str) and needles.in_text(leaf) for leaf in _walk(document))


def _bytes_hit(data: bytes, needles: Needles) -> bool:
    return needles.in_text(data.decode("utf-8", "replace"))


def _has_text(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return any(_has_text(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _has_text(t.value_type)
    if pa.types.is_map(t):
        return _has_text(t.key_type) or _has_text(t.item_type)
    return any(check(t) for check in (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view,
                                      pa.types.is_binary, pa.types.is_large_binary, pa.types.is_binary_view))


def _text_leaves(array: pa.Array) -> Iterator[pa.Array]:
    t = array.type
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            yield from _text_leaves(array.field(i))
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        yield from _text_leaves(array.flatten())
    elif pa.types.is_map(t):
        yield from _text_leaves(array.keys)
        yield from _text_leaves(array.items)
    elif _has_text(t):
        yield array


def _values_with_at(leaf: pa.Array) -> list[str]:
    """The distinct values of a text leaf that contain `@` (an email needs one), decoded."""
    import pyarrow.compute as pc

    if pa.types.is_binary(leaf.type) or pa.types.is_large_binary(leaf.type) or pa.types.is_binary_view(leaf.type):
        values = pc.unique(leaf.drop_null()).to_pylist()
        return [v.decode("utf-8", "replace") for v in values if b"@" in v]
    leaf = leaf.cast(pa.large_string()) if not pa.types.is_large_string(leaf.type) else leaf
    return pc.unique(pc.filter(leaf, pc.fill_null(pc.match_substring(leaf, "@"), False))).to_pylist()


def _parquet_hit(fs: fsspec.AbstractFileSystem, path: str, needles: Needles) -> bool:
    """Every text value of every row group (nested and list columns included), and the footer's
    statistics and key-value metadata."""
    with fs.open(path, "rb") as fh:
        pf = pq.ParquetFile(fh)
        meta = pf.metadata
        kv = meta.metadata or {}
        if any(needles.in_text(v.decode("utf-8", "replace")) for v in kv.values()):
            return True
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                stats = meta.row_group(g).column(c).statistics
                if stats is not None and stats.has_min_max:
                    for v in (stats.min, stats.max):
                        if isinstance(v, str | bytes) and needles.in_bound(v if isinstance(v, bytes) else v.encode()):
                            return True
        columns = [f.name for f in pf.schema_arrow if _has_text(f.type)]
        for g in range(meta.num_row_groups):
            rows = pf.read_row_group(g, columns=columns)
            for column in rows.columns:
                for chunk in column.chunks:
                    for leaf in _text_leaves(chunk):
                        if any(needles.in_text(v) for v in _values_with_at(leaf)):
                            return True
    return False


def search(fs: fsspec.AbstractFileSystem, location: str, needles: Needles,
           skip: frozenset[str] = frozenset()) -> list[str]:
    """Files under `location` (an fsspec path) that hold one of `needles` once decoded: Parquet data
    files (values, statistics), Avro manifests and manifest lists (every field, column bounds decoded,
    truncated bounds included), JSON metadata (parsed), anything else as text. Files in `skip` (fsspec
    paths) are not opened. Returns paths relative to `location`, never the matched value."""
    if not needles:
        return []
    found = []
    for path in sorted(listing(fs, location)):
        if path in skip:
            continue
        name = path.rsplit("/", 1)[-1]
        with fs.open(path, "rb") as fh:
            head = fh.read(4)
        if head == b"PAR1":
            hit = _parquet_hit(fs, path, needles)
        elif head == b"Obj\x01":
            hit = _avro_hit(fs, path, needles)
        else:
            with fs.open(path, "rb") as fh:
                body = fh.read()
            hit = _json_hit(body, needles) if ".json" in name else _bytes_hit(body, needles)
        if hit:
            found.append(path[len(location) + 1:])
    return found


def avro_records(fs: fsspec.AbstractFileSystem, uri: str) -> list[Any]:
    from pyiceberg.avro.file import AvroFile
    from pyiceberg.io import InputFile, InputStream

    class _Input(InputFile):  # pyiceberg's Avro reader over an fsspec file
        def __len__(self) -> int:
            return int(fs.size(strip(uri)))

        def exists(self) -> bool:
            return bool(fs.exists(strip(uri)))

        def open(self, seekable: bool = True) -> InputStream:
            return fs.open(strip(uri), "rb")  # type: ignore[no-any-return]

    with AvroFile(_Input(uri)) as reader:  # type: ignore[var-annotated]
        return list(reader)


