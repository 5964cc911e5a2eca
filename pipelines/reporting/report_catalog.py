"""What the report folder holds, run by run: one row per report in the chain (sweep, ClearUserData,
ingest, residual scan, ...), with its kind, finish time, rows removed and a one-word status.

Shared by `gdpr-sweep report list`, the auditor's `GET /api/reports` and the index page, so the three
never disagree about a run's status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.reporting import chain


def status(doc: dict[str, Any]) -> str:
    """A report's verdict: `FAILED: deadline missed`, `FAILED: verification`, `residuals found`, `passed`;
    for a retention hold's record, `hold placed: <id>` or `hold released: <id>`."""
    if doc.get("kind") == "hold":  # a retention hold placed or released (pipelines/reporting/hold_records.py)
        return f"hold {doc['hold']['action']}d: {doc['hold']['hold_id']}"
    if doc.get("overdue_entries"):
        return "FAILED: deadline missed"
    if not (doc.get("verification") or {}).get("ok", False):
        return "FAILED: verification"
    if (doc.get("residuals") or {}).get("found"):
        return "residuals found"
    return "passed"


def rows_removed(doc: dict[str, Any]) -> int | None:
    """Rows a run took out: a sweep's or ClearUserData's removals, an ingest's dropped rows."""
    if "totals" in doc:
        return (doc["totals"] or {}).get("rows_removed")
    return doc.get("rows_dropped")


def list_row(report_dir: Path, relpath: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
    """One report's row (`doc`: the report if already loaded)."""
    run_id = chain.run_id_of(relpath)
    doc = doc if doc is not None else chain.load_document(report_dir, relpath)
    if doc is None:
        return {"run_id": run_id, "kind": None, "path": relpath, "finished_at": None, "rows_removed": None,
                "overdue_entries": None, "status": f"no readable {relpath.rsplit('/', 1)[-1]}"}
    overdue = doc.get("overdue_entries")
    return {"run_id": run_id, "kind": doc.get("kind") or chain.SWEEP, "path": relpath,
            "finished_at": (doc.get("run") or {}).get("finished_at"), "rows_removed": rows_removed(doc),
            "overdue_entries": len(overdue) if isinstance(overdue, list) else None, "status": status(doc)}


def list_rows(report_dir: Path) -> list[dict[str, Any]]:
    """Every report on disk, oldest run first."""
    return [list_row(report_dir, rel) for rel in chain.documents(report_dir)]
