"""The HTTP API of `gdpr-sweep serve`: the blacklist registry behind the two source systems' paths.

Optimizely Profile Store: `GET/POST /api/v1.0/blacklists`, `DELETE /api/v1.0/blacklists/{id}` and
`DELETE /api/v1.0/blacklists/{id}/ClearUserData`. CrossEngage: `PUT/GET /users/{id}/blacklist-status`
and `POST /events` (the `Blacklisted` / `Whitelisted` system events). Same SQLite store as the CLI.

The edge of the product, like the CLI: settings come in once (`create_app`), errors of the hierarchy
become JSON `{"message": ...}` with a status code, and nothing here logs a path value, a query string
or a body (they carry emails and user ids). Bodies: `api_models.py`; query parameters: `api_query.py`;
key, limits, path spelling and access log: `api_guard.py`. Decisions: docs/decisions/0006-api-http.md,
docs/decisions/0231-vendor-api-compatibility.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gdpr_sweep import __version__
from gdpr_sweep.api_guard import BLACKLISTS, HEALTH_PATH, ASGIApp, Guard, log, presented_keys
from gdpr_sweep.api_models import (
    BlacklistIn,
    ErrorOut,
    EventsIn,
    EventsOut,
    ItemOut,
    ListOut,
    StatusIn,
    StatusOut,
)
from gdpr_sweep.api_query import (
    checked_id,
    non_negative_int,
    parse_filter,
    parse_order_by,
    reject_unknown_params,
)
from gdpr_sweep.registry import DEFAULT_TOP, Registry, command_name, parse_feed_line
from pipelines.errors import Busy, ConfigError, DataFileError, InputError, NotFound, SchemaError, SweepError
from pipelines.settings import Settings

__all__ = ["create_app", "parse_filter", "parse_order_by", "presented_keys"]
CHANNEL = "api"


# -- errors ---------------------------------------------------------------------------------------
def _message(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    """Where and what, from pydantic's errors, without the offending input (it may be an email)."""
    parts = []
    for err in exc.errors()[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        if err.get("type") == "json_invalid":
            return "request body is not valid JSON"
        if err.get("type") == "extra_forbidden":
            parts.append(f"{where}: unknown field")
        elif err.get("type") == "string_pattern_mismatch":  # the only pattern: BlacklistId
            parts.append(f"{where}: expected a UUID")
        elif err.get("type") == "missing" and where == "body":
            parts.append("body: a JSON object is required")
        else:
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _message(400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _message(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(SweepError)
    async def sweep_error(request: Request, exc: SweepError) -> JSONResponse:
        if isinstance(exc, (ConfigError, SchemaError, DataFileError)):
            # The request was fine; the server's configuration or data is not. Tell the operator.
            log.error("%s %s: %s: %s", request.method, _template(request), type(exc).__name__, exc)
            return _message(500, "the server's configuration or data has a problem; see the server log")
        if isinstance(exc, InputError):
            return _message(400, str(exc))
        if isinstance(exc, NotFound):
            return _message(404, str(exc))
        if isinstance(exc, Busy):
            return _message(409, "a sweep or another ClearUserData run is in progress; retry later",
                            headers={"Retry-After": "60"})
        log.error("%s %s: %s: %s", request.method, _template(request), type(exc).__name__, exc)
        return _message(500, "internal error; see the server log")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s: unexpected %s", request.method, _template(request), type(exc).__name__)
        return _message(500, "internal error; see the server log")


def _events_outcome(registry: Registry, body: EventsIn, names: list[str]) -> str:
    """What a `POST /events` batch left, in words. A `Whitelisted` event for one business unit cannot
    lift an entry for every scope: then say so, rather than a bare "unchanged" (issue 14)."""
    if body.id is not None:
        status = registry.status(user_id=body.id)
    else:
        status = registry.status(email=body.email, scope=body.businessUnit)
    if not status["blacklisted"]:
        return "not blacklisted"
    if body.businessUnit is not None and status["Scope"] is None and "Whitelisted" in names:
        return "not blacklisted in that scope; blacklisted in every scope"
    return "blacklisted"


def _template(request: Request) -> str:
    return getattr(request.scope.get("route"), "path", "(no route)")


# -- the application ------------------------------------------------------------------------------

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Malformed JSON, wrong type, unknown field, invalid value"},
    401: {"model": ErrorOut, "description": "Missing or wrong API key"},
    413: {"model": ErrorOut, "description": "Request body over 64 KiB"},
    415: {"model": ErrorOut, "description": "Request body is not sent as application/json"},
}


def _openapi_without_422(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI documents 422 for validation errors; this API answers them with 400 (ErrorOut)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = FastAPI.openapi(app)
            for operations in doc.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                doc.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = doc
        return app.openapi_schema
    return openapi


def create_app(settings: Settings, api_key: str | None) -> ASGIApp:
    """The ASGI application. `api_key=None` serves without authentication (loopback only, enforced by
    `gdpr-sweep serve`); then the endpoints that would tell whether someone is blacklisted refuse."""
    registry = Registry(settings.blacklist_db)
    authenticated = api_key is not None
    app = FastAPI(title="gdpr-sweep blacklist API", version=__version__, docs_url=None, redoc_url=None, redirect_slashes=False,
                  openapi_url="/openapi.json", responses=ERROR_RESPONSES,
                  description="Optimizely Profile Store and CrossEngage compatible blacklist endpoints on "
                              "the gdpr-sweep registry. Authenticate with `Authorization: Bearer <key>`, "
                              "`X-Api-Key`, `Authorization: epi-single <key>` or `X-XNG-AuthToken`. "
                              "Errors are JSON objects `{\"message\": ...}`.")
    _install_error_handlers(app)
    app.openapi = _openapi_without_422(app)  # type: ignore[method-assign]

    def require_disclosure(what: str) -> None:
        if not authenticated:
            raise StarletteHTTPException(401, f"{what} needs an API key: start the server with "
                                              "GDPR_SWEEP_API_KEY set")

    @app.get(HEALTH_PATH, tags=["service"], summary="Liveness (no API key needed, discloses nothing)")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # ---- Optimizely Profile Store ----
    @app.get(BLACKLISTS, tags=["Optimizely"], summary="List blacklist items", responses={200: {"model": ListOut}})
    def list_blacklists(
        request: Request,
        filter_: str | None = Query(None, alias="$filter", examples=["Email eq 'anna@example.com' and "
                                                                     "Scope eq 'commercesite'"]),
        skip: str | None = Query(None, alias="$skip", description="default 0"),
        top: str | None = Query(None, alias="$top", description=f"default {DEFAULT_TOP}; skip + top < 10000"),
        order_by: str | None = Query(None, alias="$orderBy", examples=["Email desc"]),
    ) -> dict[str, Any]:
        reject_unknown_params(request, ("$filter", "$skip", "$top", "$orderBy", "$orderby"))
        require_disclosure("listing the blacklist")
        if order_by is not None and request.query_params.get("$orderby") is not None:
            raise InputError("give $orderBy once")
        order_by = order_by if order_by is not None else request.query_params.get("$orderby")
        criteria = parse_filter(filter_) if filter_ is not None else {}
        field, descending = parse_order_by(order_by) if order_by is not None else ("CreatedAt", False)
        page = registry.list(**criteria, skip=non_negative_int("$skip", skip, 0),
                             top=non_negative_int("$top", top, DEFAULT_TOP),
                             order_by=field, descending=descending)
        return page.to_json()

    @app.post(BLACKLISTS, status_code=201, tags=["Optimizely"], summary="Add a blacklist item",
              responses={201: {"model": ItemOut, "description": "The new item, or the identical item that "
                                                                 "already existed (`Created`: false)"}})
    def add_blacklist(request: Request, body: BlacklistIn) -> JSONResponse:
        reject_unknown_params(request)
        record, created = registry.add(email=body.Email, user_id=body.UserId, scope=body.Scope, source=CHANNEL)
        if not authenticated:  # same answer whether or not the person was already blacklisted
            return JSONResponse({"BlacklistId": record.blacklist_id, "Email": record.email,
                                 "Scope": record.scope}, status_code=201)
        # 201 also for an item that already existed, as the vendor's clients expect (`Created` tells).
        return JSONResponse({**record.to_json(), "Created": created}, status_code=201)

    @app.delete(BLACKLISTS + "/{blacklist_id}", tags=["Optimizely"], summary="Remove a blacklist item",
                responses={404: {"model": ErrorOut, "description": "No such blacklist item"}})
    def remove_blacklist(request: Request, blacklist_id: str) -> JSONResponse:
        reject_unknown_params(request)
        record = registry.remove(checked_id(blacklist_id), channel=CHANNEL)
        return JSONResponse(f"Successfully removed blacklist item {record.blacklist_id}")

    @app.delete(BLACKLISTS + "/{blacklist_id}/ClearUserData", tags=["Optimizely"],
                summary="Remove the data of a blacklist item's person now (SPEC §4 ClearUserData)",
                responses={404: {"model": ErrorOut, "description": "No such item, or no profile carries its email"},
                           409: {"model": ErrorOut, "description": "A sweep is running; retry later"}})
    def clear_user_data(request: Request, blacklist_id: str) -> JSONResponse:
        # A sync endpoint: FastAPI runs it in a worker thread, so the server keeps answering meanwhile.
        reject_unknown_params(request)
        blacklist_id = checked_id(blacklist_id)
        try:
            from gdpr_sweep.operations import clear_user_data as run_clear
        except ImportError:
            raise StarletteHTTPException(501, "ClearUserData is not available in this build") from None
        summary = run_clear(settings, blacklist_id)
        headers = {}
        if isinstance(summary, dict) and summary.get("report"):
            headers["X-Gdpr-Sweep-Report"] = str(summary["report"])
        log.info("ClearUserData done for blacklist item %s", blacklist_id)
        return JSONResponse(f"Successfully removed data for blacklist item {blacklist_id}", headers=headers)

    # ---- CrossEngage ----
    @app.put("/users/{user_id}/blacklist-status", tags=["CrossEngage"], summary="Set a user's blacklist status",
             responses={200: {"model": StatusOut}})
    def put_status(request: Request, user_id: str, body: StatusIn) -> dict[str, Any]:
        reject_unknown_params(request)
        result = registry.set_status(user_id=user_id, blacklisted=body.blacklisted, channel=CHANNEL)
        if not authenticated:
            return {"blacklisted": body.blacklisted}
        return result

    @app.get("/users/{user_id}/blacklist-status", tags=["CrossEngage"], summary="A user's blacklist status",
             responses={200: {"model": StatusOut}})
    def get_status(request: Request, user_id: str) -> dict[str, Any]:
        reject_unknown_params(request)
        require_disclosure("reading a blacklist status")
        return registry.status(user_id=user_id)

    @app.post("/events", tags=["CrossEngage"], summary="Blacklisted / Whitelisted system events",
              responses={200: {"model": EventsOut}},
              description="Events named `Blacklisted` or `Whitelisted` set the status of the addressed "
                          "user (`id`) or lead (`email` + optional `businessUnit`); the latest timestamp "
                          "wins. Other event names are accepted and ignored: nothing of them is stored. "
                          "The batch is validated as a whole; on any error nothing is applied.")
    def post_events(request: Request, body: EventsIn) -> dict[str, Any]:
        reject_unknown_params(request)
        if body.id is None and body.email is None:
            raise InputError("events: give 'id' (external user id) or 'email' (+ 'businessUnit')")
        if body.businessUnit is not None and body.email is None:
            raise InputError("events: 'businessUnit' goes with 'email' (a lead)")
        lines, ignored, errors = [], 0, []
        for n, item in enumerate(body.events):
            try:
                name = command_name(item.event)  # padding trimmed; a case variant is an error
            except InputError as exc:
                errors.append(f"events[{n}]: {exc}")
                continue
            if name is None:
                ignored += 1
                continue
            line = {"id": body.id, "email": body.email, "businessUnit": body.businessUnit,
                    "event": name, "timestamp": item.timestamp}
            line = {k: v for k, v in line.items() if v is not None}
            try:
                parse_feed_line(line)  # the registry's own validation, per item, for a precise message
            except InputError as exc:
                errors.append(f"events[{n}]: {exc}")
            lines.append(line)
        if errors:
            more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
            raise InputError(f"{len(errors)} bad event(s), nothing applied: {'; '.join(errors[:5])}{more}")
        counts = registry.apply_events(lines, channel=CHANNEL) if lines else {}
        summary: dict[str, Any] = {"received": len(body.events), "commands": len(lines), "ignored": ignored}
        if authenticated:
            summary["outcomes"] = {k: v for k, v in counts.items() if k not in ("lines", "ignored")}
            if lines:
                summary["outcome"] = _events_outcome(registry, body, [line["event"] for line in lines])
        return summary

    return Guard(app, api_key)
