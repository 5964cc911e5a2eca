"""Per-partition steps and dataset back-ends, so a task runner (threads, or a Dask cluster) can spread
the sweep over files and machines (docs/decisions/0009-scaleout-dask-s3-delta.md).

A partition is a run of consecutive files of one dataset (`partitions`; the flow picks how many per
dataset, flows/runners.py). Matching runs in two passes over them, which together equal one global
`find_matches` (§3 rule 3 links devices across files and datasets):

1. `link_partition`: each partition's identity hits (rules 1, 2) and the devices they link (a scan
   of the identity columns);
2. `match_partition`: each partition's device scan, with the union of every partition's linked
   devices as `extra_linked` and its own identity hits from pass 1, giving its rows to drop and
   counts. `merge_matches` adds the results up. Each column is read once.

Then `write_partition` writes its files of a dataset's new version, `finish_dataset` records the
version, `verify_partition` re-reads a slice of the output files, and `publish` switches the dataset. Each step
calls the dataset's implementation of the storage interface (`pipelines.datasets.base.Dataset`, chosen
by `pipelines.datasets.factory.open_dataset`): this module never asks which kind of dataset it holds.
A table kind (Delta, Iceberg) is purged by `purge_table` instead of the per-file steps (`per_file`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from pipelines.config.settings import DatasetConfig, Settings
from pipelines.core.match import LINKED_SCHEMA, connect, find_matches
from pipelines.core.model import (
    DatasetInput,
    DatasetMatches,
    DatasetOutcome,
    DatasetPlan,
    FileOutcome,
    MatchResult,
    Verification,
)
from pipelines.datasets import objectstore
from pipelines.datasets.factory import open_dataset, open_datasets
from pipelines.datasets.settle import RawSettlement


@dataclass(frozen=True)
class Partition:
    """Consecutive files of one dataset: the unit a task runner maps over."""

    dataset: str
    relpaths: tuple[str, ...]


def partitions(plans: Sequence[DatasetPlan], per_dataset: int = 1) -> list[Partition]:
    """Split each dataset's files into at most `per_dataset` partitions of consecutive files (a task
    costs ~0.2 s of orchestration, so a partition should be worth more than that)."""
    parts = []
    for p in plans:
        rels = [f.relpath for f in p.files]
        n = max(1, min(per_dataset, len(rels)))
        size = -(-len(rels) // n) if rels else 0
        parts += [Partition(p.config.name, tuple(rels[i:i + size])) for i in range(0, len(rels), size or 1)]
    return parts


def open_connection(settings: Settings, reads: DatasetConfig | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can read every configured dataset (an object store registered once);
    with `reads`, that dataset prepares its reads first (an S3 prefix lists its objects' sizes and ETags)."""
    con = connect(settings.duckdb_memory_limit)
    if any(d.remote for d in open_datasets(settings)):
        objectstore.configure(settings.s3)
        objectstore.register(con, settings.s3)
    if reads is not None:
        open_dataset(reads, settings).prefetch()
    return con


def filesystem(settings: Settings, config: DatasetConfig):  # type: ignore[no-untyped-def]
    """The fsspec file system a dataset's files are read through (None for local files)."""
    return open_dataset(config, settings).filesystem


# ---------------------------------------------------------------------------------------------
# Extract


def plan(settings: Settings, config: DatasetConfig, fingerprint: str | None = None) -> DatasetPlan:
    """The files this run reads for one dataset, wherever and however it is stored."""
    return open_dataset(config, settings).plan(fingerprint)


# ---------------------------------------------------------------------------------------------
# Match, per file, in two passes


def partition_input(plan: DatasetPlan, relpaths: Sequence[str], blacklist_version: int | None = None) -> DatasetInput:
    whole = plan.as_input(blacklist_version)
    return dataclasses.replace(whole, files={rel: whole.files[rel] for rel in relpaths})


@dataclass(frozen=True)
class Links:
    """Pass 1's result for one partition."""

    linked: pa.Table
    """The devices its matching rows link (LINKED_SCHEMA)."""
    hits: pa.Table
    """Its rows matched by rules 1 and 2 (HITS_SCHEMA), which pass 2 reuses instead of reading them again."""


def link_partition(settings: Settings, entries: pa.Table, plan: DatasetPlan, relpaths: Sequence[str],
                   blacklist_version: int | None = None) -> Links:
    """Pass 1: these files' identity hits and the devices they link (§3 rules 1, 2 and rule 3's first half)."""
    with open_connection(settings, plan.config) as con:
        found = find_matches(con, entries, [partition_input(plan, relpaths, blacklist_version)],
                             settings.link_devices_through_events, links_only=True)
    assert found.identity_hits is not None
    return Links(found.linked_devices, found.identity_hits)


def union_linked(tables: Iterable[pa.Table]) -> pa.Table:
    """Every file's linked devices, distinct and sorted as `find_matches` returns them."""
    table = pa.concat_tables([LINKED_SCHEMA.empty_table(), *(t.cast(LINKED_SCHEMA) for t in tables)])
    distinct = table.group_by(LINKED_SCHEMA.names, use_threads=False).aggregate([])
    return distinct.sort_by([(n, "ascending") for n in LINKED_SCHEMA.names]).cast(LINKED_SCHEMA)


def match_partition(settings: Settings, entries: pa.Table, plan: DatasetPlan, relpaths: Sequence[str],
                    linked: pa.Table, blacklist_version: int | None = None,
                    own: Links | None = None, held: pa.Table | None = None) -> DatasetMatches:
    """Pass 2: these files' rows to drop and counts, with every partition's linked devices. `own`:
    this partition's pass-1 result (its identity hits are reused); without it the identity columns
    are scanned again. `held`: the active retention holds (pipelines/core/holds.py)."""
    with open_connection(settings, plan.config) as con:
        result = find_matches(con, entries, [partition_input(plan, relpaths, blacklist_version)],
                              settings.link_devices_through_events, extra_linked=linked,
                              identity_hits=own.hits if own is not None else None, held=held)
    return result.datasets[plan.config.name]


def merge_matches(plans: Sequence[DatasetPlan], parts: Sequence[Partition], per_file: Sequence[DatasetMatches],
                  linked: pa.Table) -> MatchResult:
    """Add the per-file results up into the one MatchResult a global match would give."""
    datasets = {p.config.name: DatasetMatches() for p in plans}
    by_dataset: dict[str, list[DatasetMatches]] = {}
    for part, m in zip(parts, per_file, strict=True):
        by_dataset.setdefault(part.dataset, []).append(m)
    for name, results in by_dataset.items():
        drops: dict[str, np.ndarray] = {}
        by_reason: dict[str, int] = {}
        by_entry: dict[str, int] = {}
        held: dict[str, int] = {}
        for m in results:
            drops.update(m.drops)
            for total, counts in ((by_reason, m.by_reason), (by_entry, m.by_entry), (held, m.held_by_entry)):
                for key, n in counts.items():
                    total[key] = total.get(key, 0) + n
        datasets[name] = DatasetMatches(drops=dict(sorted(drops.items())), by_reason=dict(sorted(by_reason.items())),
                                        by_entry=dict(sorted(by_entry.items())), held_by_entry=dict(sorted(held.items())))
    return MatchResult(datasets=datasets, linked_devices=linked)


# ---------------------------------------------------------------------------------------------
# Purge: per file (mapped partitions) or per table (one commit), as the dataset's kind purges


def keep_current(settings: Settings, plan: DatasetPlan, matches: DatasetMatches,
                 fingerprint: str | None = None) -> DatasetOutcome | None:
    """On a quiet night, the current version as the dataset's outcome (nothing is written); else None."""
    return open_dataset(plan.config, settings).keep_current(plan, matches, fingerprint)


def start_version(settings: Settings, plan: DatasetPlan, run_id: str) -> None:
    """Create the (empty) version the partitions are written into."""
    open_dataset(plan.config, settings).start_version(plan, run_id)


def write_partition(settings: Settings, plan: DatasetPlan, relpaths: Sequence[str],
                    drops: dict[str, np.ndarray], run_id: str) -> list[FileOutcome]:
    """These files of a per-file dataset's new version."""
    return open_dataset(plan.config, settings).write_files(plan, relpaths, drops, run_id)


def finish_dataset(settings: Settings, plan: DatasetPlan, outcomes: Sequence[FileOutcome], matches: DatasetMatches,
                   run_id: str, blacklist_version: int, fingerprint: str | None = None) -> DatasetOutcome:
    """Record the dataset's new version (its manifest) once every partition is written."""
    return open_dataset(plan.config, settings).finish(plan, outcomes, matches, run_id, blacklist_version,
                                                      fingerprint)


def purge_table(settings: Settings, plan: DatasetPlan, matches: DatasetMatches, run_id: str,
                blacklist_version: int) -> DatasetOutcome:
    """A table kind (Delta, Iceberg): one commit of the table's own for the whole table."""
    return open_dataset(plan.config, settings).purge_table(plan, matches, run_id, blacklist_version)


def per_file(settings: Settings, plan: DatasetPlan) -> bool:
    """Whether the dataset is purged file by file (mapped partitions) or by one table commit."""
    return open_dataset(plan.config, settings).per_file


# ---------------------------------------------------------------------------------------------
# Verify, per output file


def verification_slices(outcomes: Sequence[DatasetOutcome], per_dataset: int = 1) -> list[DatasetOutcome]:
    """Each dataset's output files (for a Delta table: its files after the purge) in at most
    `per_dataset` slices; a slice is an outcome of those files with nothing removed."""
    slices = []
    for o in (x.verifiable() for x in outcomes):
        files = [dataclasses.replace(f, rows_in=f.rows_out) for f in o.files]
        n = max(1, min(per_dataset, len(files)))
        size = -(-len(files) // n) if files else 1
        for i in range(0, len(files), size):
            slices.append(DatasetOutcome(o.name, o.kind, o.version, tuple(files[i:i + size]), {}, {}))
    return slices


def verify_partition(settings: Settings, entries: pa.Table, piece: DatasetOutcome, linked: pa.Table,
                     held: pa.Table | None = None) -> Verification:
    """Re-read one output file: its row count, and (if rewritten) §3 again with every linked device;
    rows kept by an active retention hold (`held`) are not matches."""
    with open_connection(settings) as con:
        return open_dataset(settings.dataset(piece.name), settings).verify(con, entries, piece, linked, held)


def merge_verifications(results: Sequence[Verification]) -> Verification:
    by_entry: dict[str, int] = {}
    for v in results:
        for bid, n in v.matches_by_entry.items():
            by_entry[bid] = by_entry.get(bid, 0) + n
    return Verification(files_checked=sum(v.files_checked for v in results),
                        rows_checked=sum(v.rows_checked for v in results),
                        matches=sum(v.matches for v in results), matches_by_entry=dict(sorted(by_entry.items())),
                        files_reread=sum(v.files_reread for v in results),
                        rows_reread=sum(v.rows_reread for v in results))


# ---------------------------------------------------------------------------------------------
# Publish


def publish(settings: Settings, plan: DatasetPlan, outcome: DatasetOutcome, unscoped_emails: Sequence[str]) -> None:
    """Switch readers to the new version and delete what it supersedes (raw snapshots are the flow's call)."""
    open_dataset(plan.config, settings).publish(plan, outcome, unscoped_emails)


def discard_unpublished(settings: Settings) -> None:
    """After a failed run (under the run lock): delete what it wrote but did not publish (local folders:
    version folders, its copies of raw files); each dataset keeps the version readers see."""
    for dataset in open_datasets(settings):
        dataset.discard_unpublished()


def settle_raw(settings: Settings, plan: DatasetPlan, outcome: DatasetOutcome, delete: bool) -> RawSettlement:
    """After publishing: delete (with `delete`) the raw snapshots the published dataset holds, each only
    while unchanged since read; report those that changed."""
    return open_dataset(plan.config, settings).settle_raw(plan, outcome, delete)


def delete_consumed_raw(settings: Settings, plan: DatasetPlan, outcome: DatasetOutcome) -> list[str]:
    """Delete the raw snapshots the published dataset holds and that are unchanged since read."""
    return list(settle_raw(settings, plan, outcome, delete=True).deleted)


def upload_report(settings: Settings, report_path: str) -> list[str]:
    """Copy the run's report folder to `[sweep] report_url`, if configured."""
    if not settings.report_url:
        return []
    objectstore.configure(settings.s3)
    return objectstore.upload_report(objectstore.filesystem(settings.s3), Path(report_path).parent,
                                     settings.report_url)
