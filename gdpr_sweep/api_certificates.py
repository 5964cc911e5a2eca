"""The auditor's certificate route: `GET /api/reports/certificates/{BlacklistId}` (auditor key only,
like every path under `/api/reports`; README "Auditor access", docs/decisions/0272-erasure-certificates.md).

The erasure certificate of one request, made from the report chain as of its head and written nowhere:
the JSON (default) and its HTML page (`?format=html`), fetched in two requests at the same head, are
the pair `gdpr-sweep report verify-certificate` checks offline.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gdpr_sweep.api_guard import REPORTS
from gdpr_sweep.api_query import checked_id, reject_unknown_params
from gdpr_sweep.api_reports import MEDIA_TYPES
from gdpr_sweep.certificates import make_certificate
from pipelines.config.settings import Settings
from pipelines.core.errors import InputError
from pipelines.reporting import chain


def certificates_router(settings: Settings) -> APIRouter:
    api = APIRouter(prefix=REPORTS, tags=["Auditor"])

    @api.get("/certificates/{blacklist_id}", summary="The erasure certificate of one request (JSON, or its page)",
             description="Made from the report chain as of its head: the JSON (`format=json`, default) and the "
                         "HTML page (`format=html`) fetched at the same head verify together offline.")
    def certificate(request: Request, blacklist_id: str,
                    format: str | None = Query(None, examples=["html"])) -> Response:  # noqa: A002
        reject_unknown_params(request, ("format",))
        if format not in (None, "json", "html"):
            raise InputError("format: expected json or html")
        doc, html = make_certificate(settings, checked_id(blacklist_id), as_of_head=True)
        suffix = "html" if format == "html" else "json"
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                   "Content-Disposition": f'inline; filename="certificate-{doc["blacklist_id"]}.{suffix}"'}
        if format == "html":
            return Response(html.encode("utf-8"), media_type=MEDIA_TYPES[".html"], headers=headers)
        return Response(chain.pretty_bytes(doc), media_type=MEDIA_TYPES[".json"], headers=headers)

    return api
