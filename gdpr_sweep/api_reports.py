"""The auditor's read-only routes of `gdpr-sweep serve`, all under `/api/reports` (the auditor key's
paths, `api_guard.REPORTS`; README "Auditor access", docs/decisions/0262-auditor-access.md).

- `GET /api/reports`: every report in the chain (run, kind, finished, rows removed, status, path);
- `GET /api/reports/verify`: the hash chain checked now (`report verify`);
- `GET /api/reports/notices?since=<ISO time>`: erasure notices for recipients (`pipelines.reporting.notices`);
- `GET /api/reports/{path}`: a file of the report folder as written (`index.html`, `chain.jsonl`,
  `notices.jsonl`, `<run_id>/report.html`, `_operations/<run_id>/clear-user-data.json`, ...), so the
  index page's relative links work in a browser (HTTP Basic, the auditor key as password).

Nothing here writes. Other auditor routes go under the same prefix in a router of their own
(certificates: `api_certificates.py`), included in `create_app` before `files_router` (whose
catch-all path must come last).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gdpr_sweep.api_guard import REPORTS
from gdpr_sweep.api_query import reject_unknown_params
from pipelines.config.settings import Settings
from pipelines.reporting import chain, notices, report_catalog

MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json",
               ".md": "text/markdown; charset=utf-8", ".jsonl": "application/x-ndjson",
               ".png": "image/png", ".svg": "image/svg+xml"}
"""The kinds of file the report folder holds that are served; anything else answers 404."""


def report_file(report_dir: Path, relpath: str) -> Path | None:
    """The file `relpath` names inside `report_dir`, or None: no hidden or temporary files, no `..`,
    nothing reached through a symlink out of the folder, only the kinds in MEDIA_TYPES."""
    parts = relpath.split("/")
    if not relpath or any(not p or p.startswith(".") or p == ".." for p in parts):
        return None
    path = report_dir / relpath
    if path.suffix not in MEDIA_TYPES:
        return None
    try:
        resolved, root = path.resolve(strict=True), report_dir.resolve(strict=True)
    except OSError:
        return None
    if not resolved.is_relative_to(root) or not resolved.is_file():
        return None
    return resolved


def router(settings: Settings) -> APIRouter:
    """The auditor's routes on `settings.report_dir`."""
    report_dir = settings.report_dir
    api = APIRouter(prefix=REPORTS, tags=["Auditor"])

    @api.get("", summary="Every report in the chain, oldest first")
    def list_reports(request: Request) -> dict[str, Any]:
        reject_unknown_params(request)
        rows = report_catalog.list_rows(report_dir)
        return {"total": len(rows), "items": rows}

    @api.get("/verify", summary="The report chain checked now (as `gdpr-sweep report verify`)")
    def verify(request: Request, expect_head: str | None = Query(None)) -> dict[str, Any]:
        reject_unknown_params(request, ("expect_head",))
        return chain.verify_chain(report_dir, expect_head).to_json()

    @api.get("/notices", summary="Erasure notices for recipients, appended after `since`",
             description="One record per erased entry and dataset and run: BlacklistId, dataset, run, "
                         "rows erased, erased_at, recorded_at; never an identity. Poll with `since` = the "
                         "last `recorded_at` you saw (the response's `next_since`).")
    def list_notices(request: Request, since: str | None = Query(None, examples=["2026-12-07T00:00:00Z"])
                     ) -> dict[str, Any]:
        reject_unknown_params(request, ("since",))
        items = list(notices.notices_since(report_dir, notices.parse_since(since)))
        return {"count": len(items), "items": items,
                "next_since": items[-1]["recorded_at"] if items else since}

    return api


def files_router(settings: Settings) -> APIRouter:
    """`GET /api/reports/{path}`: a file of the report folder. Its path matches anything under the
    prefix, so `create_app` includes it after every other router: a route registered later would
    never be reached."""
    report_dir = settings.report_dir
    api = APIRouter(prefix=REPORTS, tags=["Auditor"])

    @api.get("/{relpath:path}", summary="A file of the report folder (index.html, a run's report.html, ...)")
    def report_folder_file(request: Request, relpath: str) -> FileResponse:
        reject_unknown_params(request)
        path = report_file(report_dir, relpath)
        if path is None:
            raise StarletteHTTPException(404, "no such report file")
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix],
                            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    return api
