"""`gdpr-sweep scan`: the residual scan on demand, as an operation in the report chain.

Reads the current cleaned datasets (and `[scan] lake_roots`) under the run lock, so a sweep cannot
swap a version away mid-scan; searches for every blacklist entry and the devices remembered as linked to it;
writes `report_dir/_operations/<run_id>/residual-scan.json` (+ `.md`, `.html`) sealed into the chain.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipelines.assurance.residual_scan import (
    excluding_held,
    linked_pairs,
    residual_block,
    residual_failure,
    run_scan,
)
from pipelines.config.settings import Settings
from pipelines.core.errors import SweepError
from pipelines.core.match import entries_table
from pipelines.core.version import code_version
from pipelines.datasets import storage
from pipelines.operations.targeted import new_run_id
from pipelines.registry.holds import HoldStore
from pipelines.registry.links import remembered_links
from pipelines.registry.registry import Registry, format_time
from pipelines.reporting import report_index, residual_report


def residual_scan(settings: Settings, fail: bool | None = None) -> dict[str, Any]:
    """Run the scan now and write its report; return a summary (ids, columns and counts only).

    `fail` overrides `[scan] fail_on_residuals`: when true, a finding raises SweepError (exit 1) after
    the report is written."""
    started = datetime.now(UTC)
    run_id = new_run_id(started, "scan")
    with storage.run_lock(settings.work_dir):
        registry = Registry(settings.blacklist_db)
        snapshot = registry.snapshot()
        # the devices remembered with the entries (docs/decisions/0211-remembered-device-links.md)
        devices = linked_pairs(remembered_links(settings, entries_table(snapshot.entries)))
        result = run_scan(settings, snapshot.entries, devices)
        finished = datetime.now(UTC)
        block = excluding_held(residual_block(result, settings, format_time(finished), "gdpr-sweep scan"),
                               HoldStore(settings).list(), format_time(finished))  # held rows stay on purpose
        if fail is not None:
            block["fail_on_residuals"] = fail
        run = {"run_id": run_id, "started_at": format_time(started), "finished_at": format_time(finished),
               "code_version": code_version(), "config": str(settings.config_path)}
        path, _ = residual_report.write_scan_report(
            settings.report_dir, residual_report.build_scan_report(run, block, snapshot.version))
        report_index.refresh(settings.report_dir)
    summary = {"run_id": run_id, "status": block["status"], "found": block["found"],
               "entries_found": block["entries_found"], "findings": block["findings"],
               "targets": block["targets"], "not_scanned": block["not_scanned"], "report": str(path)}
    if block["found"] and block["fail_on_residuals"]:
        raise ResidualsFound(residual_failure(block, path), summary)
    return summary


class ResidualsFound(SweepError):
    """The scan found residuals and was asked to fail (exit 1); carries the summary to print first."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message)
        self.summary = summary
