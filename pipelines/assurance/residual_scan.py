"""Which files the residual scan reads, running it over them, and its result as a report block.

Targets: every configured dataset's current cleaned files (local Parquet, Delta table, or object storage),
and, when `[scan] lake_roots` is set, every top-level folder under a root that holds Parquet files
and is not a dataset (hidden and `_` folders are skipped, symlinks are not followed). Datasets apply
each entry's scope through their scope column (none: DefaultScope); folders that are no dataset have
no known scope, so only entries for every scope are searched there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipelines.assurance.residual import FileScan, Needles, connect_for, needles, scan_file
from pipelines.config.settings import DatasetConfig, Settings
from pipelines.core.holds import Hold, holding
from pipelines.core.model import Entry
from pipelines.datasets import storage
from pipelines.datasets.base import Dataset
from pipelines.datasets.factory import open_dataset, open_datasets
from pipelines.reporting import residual_report

ADVICE = ("Nothing was deleted. Each finding names a column that holds a blacklisted person outside the "
          "configured identity columns: configure it (a dataset's email / user_id / device_id), or remove "
          "the copy at its source; a finding in a configured column means rows kept on purpose (a hold, "
          "another scope) or a copy the sweep does not manage.")


@dataclass(frozen=True)
class Target:
    name: str
    kind: str
    """`dataset` or `folder`."""
    files: tuple[Path | str, ...]
    scope_column: str | None = None
    scope_mode: str = "unscoped"
    configured: frozenset[str] = frozenset()
    fs: Any = None
    """The fsspec file system of an object-storage dataset; None for local files."""


@dataclass(frozen=True)
class Finding:
    target: str
    kind: str
    column: str
    configured: bool
    match: str
    """`email`, `user_id` or `device_id`."""
    blacklist_id: str
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "kind": self.kind, "column": self.column, "configured": self.configured,
                "match": self.match, "blacklist_id": self.blacklist_id, "rows": self.rows}


@dataclass(frozen=True)
class ScanResult:
    targets: tuple[dict[str, Any], ...]
    findings: tuple[Finding, ...]
    entries: int
    devices: int
    skipped: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.findings)


def _leaf_names(column: str) -> set[str]:
    """How a configured column appears among the scan's column paths (a list's elements, a map's values)."""
    head, _, tail = column.rpartition(".")
    return {column, f"{column}[]"} | ({f"{head}{{value}}"} if head else set())


def dataset_target(settings: Settings, config: DatasetConfig) -> Target:
    """A dataset's current cleaned files, wherever and however it is stored (`Dataset.current`, the
    sweep's own listing). Raw snapshots not yet taken in are not searched: their configured columns
    hold the people the next sweep removes."""
    dataset = open_dataset(config, settings)
    files: tuple[Path | str, ...] = tuple(f.input_path for f in dataset.current().files)
    configured = frozenset(name for col in config.identity_columns.values() for name in _leaf_names(col))
    return Target(config.name, "dataset", files, config.scope, "column" if config.scope else "default", configured,
                  dataset.filesystem)


def folder_targets(roots: Sequence[Path], datasets: Sequence[Dataset]) -> list[Target]:
    """One target per top-level folder under each root (and one for Parquet files lying in the root);
    the datasets' own local folders are searched as datasets, not again as folders."""
    excluded = {os.path.realpath(p) for d in datasets for p in d.local_folders()}
    targets = []
    for root in roots:
        groups: dict[str, list[Path]] = {}
        for folder, dirs, names in os.walk(root):  # symlinks to folders are not followed
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_"))
                             and os.path.realpath(os.path.join(folder, d)) not in excluded)
            rel = os.path.relpath(folder, root)
            top = "." if rel == "." else rel.split(os.sep)[0]
            groups.setdefault(top, []).extend(Path(folder) / n for n in sorted(names)
                                              if n.endswith(".parquet") and not n.startswith((".", "_")))
        for top, files in sorted(groups.items()):
            if files:
                targets.append(Target(str(root if top == "." else root / top), "folder", tuple(files)))
    return targets


def targets_for(settings: Settings) -> tuple[list[Target], list[str]]:
    """What to scan: every dataset, then the folders under `lake_roots` (and nothing skipped, so far)."""
    targets = [dataset_target(settings, config) for config in settings.datasets]
    return targets + folder_targets(settings.scan.lake_roots, open_datasets(settings)), []


def run_scan(settings: Settings, entries: Sequence[Entry], devices: Sequence[tuple[str, str]] = ()) -> ScanResult:
    """Search every target for the entries and their linked devices; one read per file."""
    found = needles(entries, devices)
    targets, skipped = targets_for(settings)
    stats, findings = [], []
    con = connect_for(found, settings.duckdb_memory_limit)
    try:
        for target in targets:
            scans = [_scan(con, path, found, target) for path in target.files]
            stats.append({"name": target.name, "kind": target.kind, "files": len(scans),
                          "rows": sum(s.rows for s in scans), "values": sum(s.values for s in scans)})
            findings += _findings(target, scans)
    finally:
        con.close()
    searched = found.ids.filter(found.ids.column("kind").to_numpy(zero_copy_only=False) == "device_id").num_rows
    return ScanResult(tuple(stats), tuple(findings), len(entries), searched, tuple(skipped))


def _scan(con: Any, path: Path | str, found: Needles, target: Target) -> FileScan:
    if found.empty and target.fs is None:
        return FileScan(str(path), storage.num_rows(Path(path)), 0)
    return scan_file(con, path, found, target.scope_column, target.scope_mode, target.fs)


def _findings(target: Target, scans: Sequence[FileScan]) -> list[Finding]:
    total: dict[tuple[str, str, str], int] = {}
    for s in scans:
        for key, n in s.hits.items():
            total[key] = total.get(key, 0) + n
    return [Finding(target.name, target.kind, col, col in target.configured, match, bid, n)
            for (col, match, bid), n in sorted(total.items())]


def residual_block(result: ScanResult | None, settings: Settings, scanned_at: str | None,
                   reason: str | None = None) -> dict[str, Any]:
    """The `residuals` block every report carries (sweep and `gdpr-sweep scan`)."""
    scan = settings.scan
    block: dict[str, Any] = {"scanned": result is not None, "schedule": scan.schedule,
                             "fail_on_residuals": scan.fail_on_residuals, "scanned_at": scanned_at,
                             "found": bool(result and result.found), "reason": reason}
    if result is None:
        block.update(status="not scanned", targets=[], findings=[], entries_searched=0, devices_searched=0,
                     not_scanned=[], entries_found=0)
        return block
    block.update(status="residuals found" if result.found else "none found", targets=list(result.targets),
                 findings=[f.to_json() for f in result.findings], entries_searched=result.entries,
                 devices_searched=result.devices, not_scanned=list(result.skipped),
                 entries_found=len({f.blacklist_id for f in result.findings}),
                 advice=ADVICE if result.found else None)
    return block


def excluding_held(block: dict[str, Any], holds: Sequence[Hold], now_text: str) -> dict[str, Any]:
    """Findings in a dataset where an active retention hold keeps the entry's rows are not residuals:
    those rows stay on purpose (§3, `pipelines.core.holds`), whichever of their columns the copy is in.
    They move to `held_findings` (with the hold's id); status, `found` and the advice follow the rest."""
    if not block.get("scanned") or not holds:
        return block
    kept, held = [], []
    for f in block["findings"]:
        hold = holding(holds, f["blacklist_id"], f["target"], now_text) if f["kind"] == "dataset" else None
        if hold is None:
            kept.append(f)
        else:
            held.append({**f, "hold_id": hold.hold_id})
    if not held:
        return block
    return {**block, "findings": kept, "held_findings": held, "found": bool(kept),
            "status": "residuals found" if kept else "none found", "advice": ADVICE if kept else None,
            "entries_found": len({f["blacklist_id"] for f in kept})}


def linked_pairs(linked: Any) -> list[tuple[str, str]]:
    """(BlacklistId, device id) pairs from a run's linked devices (`pipelines.core.match.LINKED_SCHEMA`)."""
    if linked is None or not linked.num_rows:
        return []
    return list(zip(linked.column("bid").to_pylist(), linked.column("device").to_pylist(), strict=True))


def scheduled_block(settings: Settings, entries: Sequence[Entry], devices: Sequence[tuple[str, str]],
                    now: datetime, now_text: str) -> dict[str, Any]:
    """The nightly sweep's scan: run it when `[scan] schedule` says it is due; the report block either way."""
    weekly = settings.scan.schedule not in ("off", "every_run")  # only then does the last scan's time matter
    last = residual_report.last_scan_at(settings.report_dir) if weekly else None  # it reads reports back to it
    run, reason = residual_report.due(settings.scan, last, now)
    if not run:
        return residual_block(None, settings, None, reason)
    return residual_block(run_scan(settings, entries, devices), settings, now_text, reason)


def residual_failure(block: dict[str, Any], report_path: str | Path) -> str:
    """The one-line reason a run fails with under `fail_on_residuals`."""
    columns = sorted({f"{f['target']}.{f['column']}" if f["kind"] == "dataset" else f["column"]
                      for f in block["findings"]})
    return (f"residuals found: {block['entries_found']} blacklist "
            f"{'entry' if block['entries_found'] == 1 else 'entries'} in {len(columns)} "
            f"{'column' if len(columns) == 1 else 'columns'} the sweep does not manage "
            f"({', '.join(columns[:5])}{', ...' if len(columns) > 5 else ''}); nothing was deleted; "
            f"see {Path(report_path).with_suffix('.html')}")
