"""A decoding search of a whole dataset location, written for the tests, independent of the product.

A plain byte grep proves nothing: Parquet pages, Avro blocks and gzip files are compressed, so an email
inside them is invisible to it. Every file is decoded by what its bytes are, not by its name:

- Parquet (`PAR1`): every value of every column (nested ones as their Python form), every row group's
  column statistics, the key-value metadata, and the raw bytes (page indexes are stored uncompressed);
- Avro object container files (`Obj\\x01`, Iceberg manifests and manifest lists): the header (schema,
  metadata) and every data block decompressed (deflate, snappy, zstandard or none). Strings and bytes
  (column bounds) are stored as they are inside a block, so the decompressed block holds them;
- gzip (`\\x1f\\x8b`, `*.metadata.json.gz`): decompressed, then searched by the same rules;
- anything else (Delta JSON log, `_last_checkpoint`, Iceberg metadata JSON, deletion vectors, state
  objects): its bytes as text, and, when it is JSON or JSON lines, the decoded values too (escapes).

Anything that claims a compressed format and cannot be decoded raises: a search that cannot read a
file must not report it clean.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

AVRO_MAGIC = b"Obj\x01"


class Undecodable(AssertionError):
    """A file the search cannot decode: the search result would be meaningless."""


def texts(data: bytes) -> Iterator[str]:
    """Every text the file's content decodes to, lower-cased."""
    yield data.decode("utf-8", "replace").lower()
    if data[:4] == b"PAR1":
        yield from _parquet(data)
    elif data[:4] == AVRO_MAGIC:
        yield from _avro(data)
    elif data[:2] == b"\x1f\x8b":
        yield from texts(gzip.decompress(data))
    else:
        yield from _json(data)


def holds(data: bytes, needles: Iterable[str]) -> bool:
    wanted = [n.lower() for n in needles]
    return any(n in t for t in texts(data) for n in wanted)


def files_holding(files: Iterable[tuple[str, bytes]], needles: Iterable[str]) -> list[str]:
    """Names of the files whose decoded content holds any needle (case-insensitive)."""
    wanted = sorted({n.lower() for n in needles})
    return sorted(name for name, data in files if holds(data, wanted))


def local_files(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every regular file under `root` (hidden and `_` names included; symlinks not followed)."""
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield str(path.relative_to(root)), path.read_bytes()


def s3_files(client, bucket: str, prefix: str = "") -> Iterator[tuple[str, bytes]]:  # type: ignore[no-untyped-def]
    """Every version of every object under `prefix` (old versions hold bytes a purge must remove too)."""
    kwargs = {"Bucket": bucket, "Prefix": prefix}
    while True:
        page = client.list_object_versions(**kwargs)
        for v in page.get("Versions", []):
            body = client.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
            yield f"{v['Key']}@{v['VersionId']}", body
        if not page.get("IsTruncated"):
            return
        kwargs.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])


def _parquet(data: bytes) -> Iterator[str]:
    try:
        table = pq.read_table(pa.BufferReader(data))
        meta = pq.ParquetFile(pa.BufferReader(data)).metadata
    except (OSError, pa.ArrowException) as exc:
        raise Undecodable(f"Parquet file not readable: {exc}") from None
    yield str(table.to_pylist()).lower()
    yield str(table.schema.metadata).lower()
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            stats = meta.row_group(g).column(c).statistics
            if stats is not None and stats.has_min_max:
                yield f"{stats.min!r} {stats.max!r}".lower()


def _json(data: bytes) -> Iterator[str]:
    text = data.decode("utf-8", "replace")
    values = []
    for line in text.splitlines() or [text]:
        try:
            values.append(json.loads(line))
        except ValueError:
            pass
    if not values:
        try:
            values.append(json.loads(text))
        except ValueError:
            return
    yield json.dumps(values, ensure_ascii=False).lower()
    yield str(values).lower()


def _read_long(buf: io.BytesIO) -> int:
    shift, result = 0, 0
    while True:
        raw = buf.read(1)
        if not raw:
            raise Undecodable("Avro file truncated")
        byte = raw[0]
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1)


def _read_bytes(buf: io.BytesIO) -> bytes:
    return buf.read(_read_long(buf))


def _avro(data: bytes) -> Iterator[str]:
    buf = io.BytesIO(data)
    buf.read(4)
    meta: dict[str, bytes] = {}
    while True:
        count = _read_long(buf)
        if count == 0:
            break
        if count < 0:
            _read_long(buf)
            count = -count
        for _ in range(count):
            key = _read_bytes(buf).decode()
            meta[key] = _read_bytes(buf)
    yield str({k: v.decode("utf-8", "replace") for k, v in meta.items()}).lower()
    codec = meta.get("avro.codec", b"null").decode()
    sync = buf.read(16)
    while buf.tell() < len(data):
        _read_long(buf)  # objects in the block
        block = _read_bytes(buf)
        yield _decompress(codec, block).decode("utf-8", "replace").lower()
        if buf.read(16) != sync:
            raise Undecodable("Avro sync marker mismatch")


def _decompress(codec: str, block: bytes) -> bytes:
    if codec == "null":
        return block
    if codec == "deflate":
        return zlib.decompress(block, -15)
    if codec == "snappy":  # raw snappy + 4-byte CRC; the uncompressed size is the leading varint
        body = block[:-4]
        return pa.Codec("snappy").decompress(body, decompressed_size=_varint(body), asbytes=True)
    if codec == "zstandard":
        return pa.Codec("zstd").decompress(block, decompressed_size=_zstd_size(block), asbytes=True)
    raise Undecodable(f"Avro codec {codec!r} not supported by the test search")


def _varint(data: bytes) -> int:
    shift, result = 0, 0
    for byte in data:
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result
    raise Undecodable("snappy block without a length")


def _zstd_size(block: bytes) -> int:
    """The frame content size from a zstd frame header (RFC 8878 §3.1.1.1)."""
    if block[:4] != b"\x28\xb5\x2f\xfd":
        raise Undecodable("not a zstd frame")
    descriptor = block[4]
    fcs_flag, single = descriptor >> 6, (descriptor >> 5) & 1
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[descriptor & 3]
    size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    if size == 0:
        raise Undecodable("zstd frame without a content size")
    fmt = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}[size]
    value = struct.unpack(fmt, block[pos:pos + size])[0]
    return value + 256 if size == 2 else value
