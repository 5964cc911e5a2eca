"""Reading a Parquet file's schema (its footer), local or on an object store: what §3's checks of the
identity columns (`pipelines/core/match.py`) and the targeted operations read before any data."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import DataFileError

_CACHE_SIZE = 8192
_cache: OrderedDict[tuple[str, int, int, int, int, int], pa.Schema] = OrderedDict()
_lock = threading.Lock()


def read_schema(path: Path) -> pa.Schema:
    """The Arrow schema of one Parquet file, or DataFileError naming the file.

    A sweep checks each file's schema in its plan and in both match passes: a local file's footer is
    read once per process and identity (`dev, ino, size, mtime_ns, ctime_ns`: the same fingerprint
    that says "same bytes" in docs/decisions/0201-integrity-of-inputs.md), so a file replaced or
    written in place is read again."""
    key = _identity(path)
    if key is not None:
        with _lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataFileError(f"{path}: not a readable Parquet file ({type(exc).__name__}); "
                            "replace or remove it and run again") from None
    if key is not None and key == _identity(path):  # unchanged while read
        with _lock:
            _cache[key] = schema
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return schema


def _identity(path: Path) -> tuple[str, int, int, int, int, int] | None:
    if "://" in str(path):
        return None  # object stores: no cheap identity here; read each time
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_schemas(paths: Sequence[Path]) -> list[pa.Schema]:
    """`read_schema` of each file, in order; object-store URLs are read in parallel (each is a
    round trip or two to the store), local files one after the other."""
    if not any("://" in str(p) for p in paths):
        return [read_schema(p) for p in paths]
    with ThreadPoolExecutor(max_workers=min(16, len(paths))) as pool:
        return list(pool.map(read_schema, paths))
