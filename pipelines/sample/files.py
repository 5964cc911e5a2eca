"""Atomic output of the sample files: a hidden temporary name, then a rename."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.sample.vocab import _WRITER_OPTIONS

# ---------------------------------------------------------------------------------------------
# Atomic file output.


@contextmanager
def _atomic_parquet(path: Path, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
    """A Parquet writer on a hidden temporary file that replaces `path` when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with pq.ParquetWriter(tmp, schema, **_WRITER_OPTIONS) as writer:
            yield writer
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_stale(folder: Path, pattern: re.Pattern[str], keep: Sequence[Path]) -> None:
    """Delete generator-named files in `folder` that this run did not write."""
    kept = {p.name for p in keep}
    for path in folder.iterdir():
        if pattern.fullmatch(path.name) and path.name not in kept and path.is_file():
            path.unlink()
