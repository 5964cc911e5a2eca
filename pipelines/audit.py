"""Write one run's sealed audit report: JSON, Markdown, HTML, linked into the report chain.

Steps: count each entry's rows still held in raw snapshot files (`deadline.held_in_raw`), build
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

from pipelines import chain
from pipelines import report as reports
from pipelines.deadline import held_in_raw
from pipelines.match import Entry, connect, entries_table
from pipelines.report_html import render_html
from pipelines.settings import Settings
from pipelines.sweep import DatasetOutcome, Verification, raw_still_held


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
                       secret: bytes, now: datetime, now_text: str) -> tuple[Path, dict[str, Any]]:
    """Write the run's report files; return report.json's path and the sealed report."""
    with connect(settings.duckdb_memory_limit) as con:
        held = held_in_raw(con, entries_table(entries), settings.datasets, settings.link_devices_through_events,
                           linked_devices)
    raw_paths = [p for ds in settings.datasets for p in raw_still_held(ds)]
    previous = chain.head(settings.report_dir)
    previous_doc = chain.load_report(settings.report_dir, previous.run_id) if previous else None
    report = reports.build_report(run, entry_infos(entries, created_at, secret), outcomes, verification,
                                  raw_deleted, raw_paths, now, raw_rows_by_entry=held, previous=previous_doc,
                                  identity_key_id=reports.key_id(secret), now_text=now_text)
    report = chain.link(report, previous)
    pages = {"report.md": reports.render_markdown(report), "report.html": render_html(report)}
    sealed = chain.seal(report, pages)
    return chain.write_sealed(settings.report_dir, sealed, pages), sealed
