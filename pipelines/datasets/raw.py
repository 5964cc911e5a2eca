"""Raw copies (§5): which raw snapshot files are still held, and whether they hold blacklisted rows.

A report must say plainly what is still held and where. `raw_status` matches the raw files still
present in each dataset's `source` folder with §3 (the same `find_matches` as the sweep) and counts
the blacklisted rows per file; `raw_report` is the `raw_copies` block of a report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.config.settings import DatasetConfig
from pipelines.core.errors import InputError
from pipelines.core.match import find_matches
from pipelines.core.model import DatasetInput
from pipelines.datasets import storage


@dataclass(frozen=True)
class RawFile:
    dataset: str
    path: str
    rows: int | None
    blacklisted_rows: int | None
    """None when the file could not be checked (unreadable, or a configured column is missing)."""
    problem: str | None = None

    @property
    def verdict(self) -> str:
        if self.blacklisted_rows is None:
            return f"NOT CHECKED ({self.problem}); treat it as holding blacklisted data"
        if self.blacklisted_rows:
            return (f"HOLDS {self.blacklisted_rows} blacklisted rows of {self.rows}; delete it "
                    "(--delete-raw or delete_raw = true)")
        return f"holds no blacklisted rows ({self.rows} rows)"


def raw_inputs(configs: Sequence[DatasetConfig]) -> list[DatasetInput]:
    """Each dataset's raw snapshot files still present in its `source` folder."""
    inputs = []
    for c in configs:
        if c.source is not None:
            inputs.append(DatasetInput(c, {rel: c.source / rel for rel in storage.list_parquet(c.source)}))
    return inputs


def raw_unchecked(configs: Sequence[DatasetConfig], why: str) -> list[RawFile]:
    """The raw files still held, listed without reading them (a verdict of NOT CHECKED, with `why`)."""
    return [RawFile(i.config.name, str(p), None, None, why) for i in raw_inputs(configs) for p in i.files.values()]


def raw_status(con: duckdb.DuckDBPyConnection, entries: pa.Table, configs: Sequence[DatasetConfig],
               link_through_events: bool, extra_linked: pa.Table | None = None) -> list[RawFile]:
    """Check every raw file still held against the blacklist; one RawFile per file."""
    return raw_check(con, entries, configs, link_through_events, extra_linked)[0]


def raw_check(con: duckdb.DuckDBPyConnection, entries: pa.Table, configs: Sequence[DatasetConfig],
              link_through_events: bool, extra_linked: pa.Table | None = None,
              held: pa.Table | None = None) -> tuple[list[RawFile], dict[str, dict[str, int]]]:
    """One match over the raw files still held: per file its blacklisted rows, and per BlacklistId
    the rows per dataset (as `pipelines.reporting.deadline.held_in_raw` counts them). Rows an active retention
    hold covers (`held`) do not count: the hold keeps them in the dataset, raw copies included."""
    inputs = [i for i in raw_inputs(configs) if i.files]
    if not inputs:
        return [], {}
    try:
        match = find_matches(con, entries, inputs, link_through_events, extra_linked, held=held)
    except InputError as exc:  # a raw file the run did not need is unreadable or lacks a column
        return [RawFile(i.config.name, str(p), None, None, str(exc)) for i in inputs for p in i.files.values()], {}
    files: list[RawFile] = []
    by_entry: dict[str, dict[str, int]] = {}
    for i in inputs:
        m = match.datasets[i.config.name]
        for rel, path in i.files.items():
            files.append(RawFile(i.config.name, str(path), storage.num_rows(Path(path)), len(m.drops.get(rel, ()))))
        for bid, n in m.by_entry.items():
            if n:
                by_entry.setdefault(bid, {})[i.config.name] = n
    return files, by_entry


def raw_report(deleted: Sequence[str], held: Sequence[RawFile]) -> dict[str, Any]:
    return {
        "deleted": list(deleted),
        "still_held": [h.path for h in held],
        "held": [{"dataset": h.dataset, "path": h.path, "rows": h.rows, "blacklisted_rows": h.blacklisted_rows,
                  "holds_blacklisted_data": h.blacklisted_rows is None or h.blacklisted_rows > 0,
                  "verdict": h.verdict} for h in held],
    }
