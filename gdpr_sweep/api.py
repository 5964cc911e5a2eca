"""The HTTP API of `gdpr-sweep serve`: the blacklist registry behind the two source systems' paths,
and the reports, read-only, for a separate auditor key (`api_reports.py`, under `/api/reports`).

Optimizely Profile Store: `GET/POST /api/v1.0/blacklists`, `DELETE /api/v1.0/blacklists/{id}` and
`DELETE /api/v1.0/blacklists/{id}/ClearUserData`. CrossEngage: `PUT/GET /users/{id}/blacklist-status`
and `POST /events` (the `Blacklisted` / `Whitelisted` system events). Retention holds:
`/api/v1.0/holds` (`api_holds.py`). Same SQLite store as the CLI.

The edge of the product, like the CLI: settings come in once (`create_app`), errors of the hierarchy
become JSON `{"message": ...}` with a status code, and nothing here logs a path value, a query string
or a body (they carry emails and user ids). One router per vendor: `api_optimizely.py`,
`api_crossengage.py`; errors and the OpenAPI document: `api_errors.py`; bodies: `api_models.py`; query
parameters: `api_query.py`; key, limits, path spelling and access log: `api_guard.py`. Decisions: docs/decisions/0006-api-http.md,
docs/decisions/0232-vendor-api-compatibility.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gdpr_sweep import __version__
from gdpr_sweep.api_certificates import certificates_router
from gdpr_sweep.api_context import ApiContext
from gdpr_sweep.api_crossengage import crossengage_router
from gdpr_sweep.api_errors import ERROR_RESPONSES, install_error_handlers, openapi_without_422
from gdpr_sweep.api_guard import HEALTH_PATH, ASGIApp, Guard, presented_keys
from gdpr_sweep.api_holds import holds_router
from gdpr_sweep.api_optimizely import optimizely_router
from gdpr_sweep.api_query import parse_filter, parse_order_by
from gdpr_sweep.api_reports import files_router as report_files_router
from gdpr_sweep.api_reports import router as report_router
from pipelines.config.settings import Settings
from pipelines.registry.registry import Registry

__all__ = ["create_app", "parse_filter", "parse_order_by", "presented_keys"]

DESCRIPTION = ("Optimizely Profile Store and CrossEngage compatible blacklist endpoints on the gdpr-sweep "
               "registry. Authenticate with `Authorization: Bearer <key>`, `X-Api-Key`, "
               "`Authorization: epi-single <key>` or `X-XNG-AuthToken`. Errors are JSON objects "
               "`{\"message\": ...}`.")


def create_app(settings: Settings, api_key: str | None, auditor_key: str | None = None) -> ASGIApp:
    """The ASGI application. `api_key=None` serves without authentication (loopback only, enforced by
    `gdpr-sweep serve`); then the endpoints that would tell whether someone is blacklisted refuse.
    `auditor_key`: the key of the read-only report routes (`api_reports`); None: they answer 401."""
    # Group commit: concurrent single writes share one durable commit (decision 0311).
    registry = Registry(settings.blacklist_db, group_commit=True)
    ctx = ApiContext(settings=settings, registry=registry, authenticated=api_key is not None)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        registry.close_writer()  # after the last request: every queued write is answered first

    app = FastAPI(title="gdpr-sweep blacklist API", version=__version__, docs_url=None, redoc_url=None,
                  redirect_slashes=False, openapi_url="/openapi.json", responses=ERROR_RESPONSES,
                  description=DESCRIPTION, lifespan=lifespan)
    install_error_handlers(app)
    app.openapi = openapi_without_422(app)  # type: ignore[method-assign]

    @app.get(HEALTH_PATH, tags=["service"], summary="Liveness (no API key needed, discloses nothing)")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(optimizely_router(ctx))
    app.include_router(crossengage_router(ctx))
    app.include_router(holds_router(ctx))  # retention holds: blacklist key only
    app.include_router(report_router(settings))  # the auditor's: every path under /api/reports
    app.include_router(certificates_router(settings))
    app.include_router(report_files_router(settings))  # keep last: its catch-all path shadows any later route
    return Guard(app, api_key, auditor_key=auditor_key)
