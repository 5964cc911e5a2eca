"""Write one run's sealed audit report: JSON, Markdown, HTML, linked into the report chain.

Steps: count the rows still held in raw snapshot files, per file and per entry (`raw.raw_check`), build
the report (`report.build_report`, carrying `first_verified_gone_at` forward from the chain's
previous report), link it to that report, render the pages, seal (hashes of pages and of the
report itself) and write pages, report.json and the chain index line, in that order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.config.settings import Settings
from pipelines.core.holds import HoldState
from pipelines.core.match import connect, entries_table
from pipelines.core.model import DatasetOutcome, Entry, Verification
from pipelines.datasets.raw import raw_check, raw_report
from pipelines.reporting import chain, report_index
from pipelines.reporting import report as reports
from pipelines.reporting.report_html import render_html


def entry_infos(entries: Sequence[Entry], created_at: Mapping[str, str], secret: bytes) -> list[reports.EntryInfo]:
    """Entries as the report names them: BlacklistId, creation time, scope and keyed hashes."""
    return [reports.EntryInfo(
        e.blacklist_id, created_at[e.blacklist_id], e.scope,
        reports.keyed_hash(secret, "email", e.email) if e.email else None,
        reports.keyed_hash(secret, "user_id", e.user_id) if e.user_id else None,
    ) for e in entries]


def write_audit_report(settings: Settings, run: reports.RunInfo, entries: Sequence[Entry],
                       created_at: Mapping[str, str], outcomes: Sequence[DatasetOutcome],
                       verification: Verification, raw_deleted: Sequence[str], linked_devices: pa.Table | None,
                       secret: bytes, now: datetime, now_text: str,
                       residuals: Mapping[str, Any] | None = None,
                       holds: HoldState | None = None,
                       file_changes: Sequence[Mapping[str, str]] = ()) -> tuple[Path, dict[str, Any]]:
    """Write the run's report files; return report.json's path and the sealed report. `residuals`: the
    residual scan's block (`pipelines.assurance.residual_scan.residual_block`); `holds`: the retention holds the
    run applied and the rows they kept (reported `held`, never `gone`); `file_changes`: files changed
    since the run read them or outside the tool (`pipelines.datasets.fileid.FileChange.as_dict`)."""
    with connect(settings.duckdb_memory_limit) as con:
        # one match over the raw files still held: per file (what and where, §5) and per entry
        raw_files, held = raw_check(con, entries_table(entries), settings.datasets,
                                    settings.link_devices_through_events, linked_devices,
                                    holds.table() if holds is not None else None)
    raw_paths = [f.path for f in raw_files]
    previous_doc = chain.latest(settings.report_dir, chain.SWEEP)  # deadline times carry forward sweep to sweep
    report = reports.build_report(run, entry_infos(entries, created_at, secret), outcomes, verification,
                                  raw_deleted, raw_paths, now, raw_rows_by_entry=held, previous=previous_doc,
                                  raw_files=raw_report(raw_deleted, raw_files)["held"],
                                  raw_unchecked=[f.path for f in raw_files if f.blacklisted_rows is None],
                                  identity_key_id=reports.key_id(secret), now_text=now_text, residuals=residuals,
                                  holds=holds, file_changes=file_changes)
    written = chain.write_linked(settings.report_dir, report, _pages)
    report_index.refresh(settings.report_dir)  # notices for recipients, index.html
    return written


def _pages(report: dict[str, Any]) -> dict[str, str]:
    return {"report.md": reports.render_markdown(report), "report.html": render_html(report)}
