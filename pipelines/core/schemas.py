"""Reading a Parquet file's schema (its footer), local or on an object store: what §3's checks of the
identity columns (`pipelines/core/match.py`) and the targeted operations read before any data."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import DataFileError


def read_schema(path: Path) -> pa.Schema:
    """The Arrow schema of one Parquet file, or DataFileError naming the file."""
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataFileError(f"{path}: not a readable Parquet file ({type(exc).__name__}); "
                            "replace or remove it and run again") from None


def read_schemas(paths: Sequence[Path]) -> list[pa.Schema]:
    """`read_schema` of each file, in order; object-store URLs are read in parallel (each is a
    round trip or two to the store), local files one after the other."""
    if not any("://" in str(p) for p in paths):
        return [read_schema(p) for p in paths]
    with ThreadPoolExecutor(max_workers=min(16, len(paths))) as pool:
        return list(pool.map(read_schema, paths))
