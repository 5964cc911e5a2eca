"""The HTTP API of `gdpr-sweep serve`: the blacklist registry behind the two source systems' paths.

Optimizely Profile Store: `GET/POST /api/v1.0/blacklists`, `DELETE /api/v1.0/blacklists/{id}` and
`DELETE /api/v1.0/blacklists/{id}/ClearUserData`. CrossEngage: `PUT/GET /users/{id}/blacklist-status`
and `POST /events` (the `Blacklisted` / `Whitelisted` system events). Same SQLite store as the CLI.

The edge of the product, like the CLI: settings come in once (`create_app`), errors of the hierarchy
become JSON `{"message": ...}` with a status code, and nothing here logs a path value, a query string
or a body (they carry emails and user ids). Decisions: docs/decisions/0006-api-http.md.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from gdpr_sweep import __version__
from gdpr_sweep.registry import COMMAND_EVENTS, DEFAULT_TOP, FIELDS, Registry, parse_feed_line
from pipelines.errors import Busy, ConfigError, DataFileError, InputError, NotFound, SchemaError, SweepError
from pipelines.identity import MAX_EMAIL_LENGTH, MAX_USER_ID_LENGTH
from pipelines.settings import Settings

log = logging.getLogger("gdpr_sweep.api")

MAX_BODY_BYTES = 64 * 1024
"""Request bodies above this size are refused with 413 before they are parsed."""
MAX_EVENTS = 1000
"""Events in one `POST /events` batch."""
MAX_FILTER_LENGTH = 2000
HEALTH_PATH = "/healthz"
CHANNEL = "api"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PARAM_NAME_RE = re.compile(r"\$?[A-Za-z_]{1,40}")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


# -- request bodies -------------------------------------------------------------------------------
class _Body(BaseModel):
    """Bodies are strict: unknown fields and wrong JSON types are 400, nothing is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class BlacklistIn(_Body):
    """`POST /api/v1.0/blacklists` (Optimizely). `UserId` is this product's addition (CrossEngage id)."""

    Email: str | None = Field(None, max_length=MAX_EMAIL_LENGTH, examples=["anna@example.com"])
    Scope: str | None = Field(None, max_length=64, examples=["DefaultScope"])
    UserId: str | None = Field(None, max_length=MAX_USER_ID_LENGTH)


class StatusIn(_Body):
    """`PUT /users/{id}/blacklist-status` (CrossEngage)."""

    blacklisted: bool


class EventIn(_Body):
    event: str = Field(min_length=1, max_length=128, examples=["Blacklisted"])
    timestamp: str | None = Field(None, max_length=64, description="ISO 8601; default: when received")
    properties: dict[str, Any] | None = Field(None, description="Accepted and not stored")


class EventsIn(_Body):
    """`POST /events` (CrossEngage): addressed by `id`, or by `email` (+ `businessUnit`, a scope)."""

    id: str | None = Field(None, max_length=MAX_USER_ID_LENGTH, examples=["USERID"])
    email: str | None = Field(None, max_length=MAX_EMAIL_LENGTH)
    businessUnit: str | None = Field(None, max_length=64)
    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS)


# -- response bodies (documented in the OpenAPI document) --------------------------------------
class ItemOut(BaseModel):
    """A blacklist item: the Optimizely fields plus `UserId`, `CreatedAt` (UTC) and `Source`."""

    BlacklistId: str
    Email: str | None
    UserId: str | None
    Scope: str | None
    CreatedAt: str
    Source: str
    Created: bool | None = Field(None, description="POST only: false when the identical item already existed")


class ListOut(BaseModel):
    total: int
    count: int
    items: list[ItemOut]


class StatusOut(BaseModel):
    blacklisted: bool
    since: str | None = None
    channel: str | None = None
    BlacklistId: str | None = None
    Scope: str | None = None
    Outcome: str | None = Field(None, description="PUT only: applied, unchanged or superseded")


class EventsOut(BaseModel):
    received: int
    commands: int = Field(description="Blacklisted / Whitelisted events in the batch")
    ignored: int = Field(description="Events with other names: accepted, not stored")
    outcomes: dict[str, int] | None = Field(None, description="applied, unchanged, superseded, duplicate, "
                                                              "added, removed")


class ErrorOut(BaseModel):
    """Every error: a one-line message naming what is wrong (never echoing an email)."""

    message: str



# -- $filter / $orderBy (OData subset of the Profile Store API) ------------------------------------
_FILTER_FIELDS = {"Email": "email", "Scope": "scope", "UserId": "user_id", "Source": "source"}
_TOKEN_RE = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>\S))")


def parse_filter(text: str) -> dict[str, str]:
    """`Email eq 'x' and Scope eq 'y'` -> {"email": "x", "scope": "y"}; InputError on anything else.

    Clauses: `Email|Scope|UserId|Source eq '<text>'`, `Scope eq null` (entries for every scope),
    `CreatedAt gt|lt '<ISO time>'`, joined by `and`.
    Quotes inside a literal are doubled (`'o''brien@example.com'`). Field names and operators are
    matched case-insensitively; values exactly.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise InputError(f"$filter: longer than {MAX_FILTER_LENGTH} characters")
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:  # only trailing whitespace is left
            break
        pos = m.end()
        kind = m.lastgroup or "bad"
        tokens.append((kind, m.group(kind)))
    usage = ("$filter: use clauses like Email eq 'x', Scope eq 'y', UserId eq 'z', Source eq 'api', "
             "CreatedAt gt '2026-11-01T00:00:00Z', joined by 'and'")
    if not tokens:
        raise InputError(f"{usage} (got an empty filter)")
    fields = {name.lower(): name for name in (*_FILTER_FIELDS, "CreatedAt")}
    out: dict[str, str] = {}
    i = 0
    while True:
        clause = tokens[i:i + 3]
        if len(clause) == 3 and clause[2] == ("word", "null") and clause[0][1].lower() == "scope":
            clause[2] = ("str", "'*'")  # `Scope eq null`: the entries for every scope
        if len(clause) < 3 or clause[0][0] != "word" or clause[1][0] != "word" or clause[2][0] != "str":
            raise InputError(f"{usage} (clause {len(out) + 1} is not of that form)")
        field = fields.get(clause[0][1].lower())
        op = clause[1][1].lower()
        value = clause[2][1][1:-1].replace("''", "'")
        if field is None:
            raise InputError(f"$filter: unknown field {clause[0][1][:40]!r}; use one of "
                             f"{', '.join(fields.values())}")
        if field == "CreatedAt":
            if op not in ("gt", "lt"):
                raise InputError("$filter: CreatedAt supports 'gt' and 'lt'")
            key = "created_after" if op == "gt" else "created_before"
        else:
            if op != "eq":
                raise InputError(f"$filter: {field} supports 'eq' only")
            key = _FILTER_FIELDS[field]
        if not value:
            raise InputError(f"$filter: {field} needs a non-empty value")
        if key in out:
            raise InputError(f"$filter: {field} {op} appears twice")
        out[key] = value
        i += 3
        if i == len(tokens):
            return out
        if tokens[i][0] != "word" or tokens[i][1].lower() != "and":
            raise InputError(f"{usage} (only 'and' may join clauses)")
        i += 1


def parse_order_by(text: str) -> tuple[str, bool]:
    """`Email desc` -> ("Email", True). One field of FIELDS, optional `asc` / `desc`."""
    parts = text.split()
    names = {name.lower(): name for name in FIELDS}
    if not 1 <= len(parts) <= 2 or parts[0].lower() not in names or (
            len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
        raise InputError(f"$orderBy: use '<field> [asc|desc]' with a field of {', '.join(FIELDS)}")
    return names[parts[0].lower()], len(parts) == 2 and parts[1].lower() == "desc"


def _non_negative_int(name: str, raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not raw.strip().isdigit() or len(raw) > 9:
        raise InputError(f"{name}: expected a non-negative integer")
    return int(raw)


def _reject_unknown_params(request: Request, allowed: tuple[str, ...] = ()) -> None:
    unknown = sorted({k for k in request.query_params if k not in allowed})
    if unknown:
        # name plain parameter names back (a typo like `$fitler`); never anything that could be data
        shown = ", ".join(repr(k) if _PARAM_NAME_RE.fullmatch(k) else "(unnamed)" for k in unknown[:5])
        hint = f"; allowed: {', '.join(allowed)}" if allowed else "; this path takes none"
        raise InputError(f"unknown query parameter(s) {shown}{hint}")
    repeated = sorted({k for k in allowed if len(request.query_params.getlist(k)) > 1})
    if repeated:
        raise InputError(f"query parameter(s) given more than once: {', '.join(repeated)}")


def _checked_id(blacklist_id: str) -> str:
    """BlacklistIds are UUIDs; anything else cannot exist (and is not echoed back)."""
    if not _UUID_RE.fullmatch(blacklist_id):
        raise NotFound("no blacklist entry with that id (a BlacklistId is a UUID)")
    return blacklist_id.lower()


# -- authentication, body limit, access log (one ASGI layer around the app) -----------------------
async def _send_json(send: Send, status: int, obj: Any, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps(obj, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def presented_keys(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Every API key a request presents: `Authorization: Bearer <key>`, `X-Api-Key: <key>`, and the
    source systems' own headers, `Authorization: epi-single <key>` (Optimizely) and `X-XNG-AuthToken`
    (CrossEngage), so their existing clients only change the base URL."""
    keys = []
    for name, value in headers:
        name = name.lower()
        if name == b"authorization":
            scheme, _, credential = value.strip().partition(b" ")
            if scheme.lower() in (b"bearer", b"epi-single") and credential.strip():
                keys.append(credential.strip())
        elif name in (b"x-api-key", b"x-xng-authtoken") and value.strip():
            keys.append(value.strip())
    return keys


class Guard:
    """API key check (401 before anything else), request body limit (413), and an access log that
    names the route template, never the path values or query string (they carry emails and ids)."""

    def __init__(self, app: ASGIApp, api_key: str | None, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.api_key = api_key.encode() if api_key is not None else None
        self.max_body = max_body

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        if self.api_key is None:
            return True
        ok = False
        for key in presented_keys(headers):
            ok |= hmac.compare_digest(key, self.api_key)  # constant time, and every candidate compared
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 0}

        async def logged_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, logged_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or ("(health)" if scope["path"] == HEALTH_PATH else "(no route)")
            log.info("%s %s %s %.1fms", scope["method"], template, status["code"],
                     (time.perf_counter() - started) * 1000)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != HEALTH_PATH and not self._authorized(scope["headers"]):
            await _send_json(send, 401, {"message": "missing or wrong API key: send it as "
                                         "'Authorization: Bearer <key>' or 'X-Api-Key: <key>'"},
                             headers=((b"www-authenticate", b'Bearer realm="gdpr-sweep"'),))
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _send_json(send, 413, {"message": f"request body larger than {self.max_body} bytes"})
            return
        # Read the (small) body up front so a chunked upload cannot exceed the limit either.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _send_json(send, 413, {"message": f"request body larger than {self.max_body} bytes"})
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        media = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
        if body and media and media != b"application/json" and not media.endswith(b"+json"):
            await _send_json(send, 415, {"message": "send the request body as JSON with "
                                         "'Content-Type: application/json'"})
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


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


def _template(request: Request) -> str:
    return getattr(request.scope.get("route"), "path", "(no route)")


# -- the application ------------------------------------------------------------------------------
BLACKLISTS = "/api/v1.0/blacklists"


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
    app = FastAPI(title="gdpr-sweep blacklist API", version=__version__, docs_url=None, redoc_url=None,
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
    @app.get(BLACKLISTS + "/", include_in_schema=False)
    def list_blacklists(
        request: Request,
        filter_: str | None = Query(None, alias="$filter", examples=["Email eq 'anna@example.com' and "
                                                                     "Scope eq 'commercesite'"]),
        skip: str | None = Query(None, alias="$skip", description="default 0"),
        top: str | None = Query(None, alias="$top", description=f"default {DEFAULT_TOP}; skip + top <= 10000"),
        order_by: str | None = Query(None, alias="$orderBy", examples=["Email desc"]),
    ) -> dict[str, Any]:
        _reject_unknown_params(request, ("$filter", "$skip", "$top", "$orderBy", "$orderby"))
        require_disclosure("listing the blacklist")
        if order_by is not None and request.query_params.get("$orderby") is not None:
            raise InputError("give $orderBy once")
        order_by = order_by if order_by is not None else request.query_params.get("$orderby")
        criteria = parse_filter(filter_) if filter_ is not None else {}
        field, descending = parse_order_by(order_by) if order_by is not None else ("CreatedAt", False)
        page = registry.list(**criteria, skip=_non_negative_int("$skip", skip, 0),
                             top=_non_negative_int("$top", top, DEFAULT_TOP),
                             order_by=field, descending=descending)
        return page.to_json()

    @app.post(BLACKLISTS, status_code=201, tags=["Optimizely"], summary="Add a blacklist item",
              responses={201: {"model": ItemOut},
                         200: {"model": ItemOut, "description": "An identical item already existed; it is returned"}})
    @app.post(BLACKLISTS + "/", status_code=201, include_in_schema=False)
    def add_blacklist(request: Request, body: BlacklistIn) -> JSONResponse:
        _reject_unknown_params(request)
        record, created = registry.add(email=body.Email, user_id=body.UserId, scope=body.Scope, source=CHANNEL)
        if not authenticated:  # same answer whether or not the person was already blacklisted
            return JSONResponse({"BlacklistId": record.blacklist_id, "Email": record.email,
                                 "Scope": record.scope}, status_code=201)
        return JSONResponse({**record.to_json(), "Created": created}, status_code=201 if created else 200)

    @app.delete(BLACKLISTS + "/{blacklist_id}", tags=["Optimizely"], summary="Remove a blacklist item",
                responses={404: {"model": ErrorOut, "description": "No such blacklist item"}})
    def remove_blacklist(request: Request, blacklist_id: str) -> JSONResponse:
        _reject_unknown_params(request)
        record = registry.remove(_checked_id(blacklist_id), channel=CHANNEL)
        return JSONResponse(f"Successfully removed blacklist item {record.blacklist_id}")

    @app.delete(BLACKLISTS + "/{blacklist_id}/ClearUserData", tags=["Optimizely"],
                summary="Remove the data of a blacklist item's person now (SPEC §4 ClearUserData)",
                responses={404: {"model": ErrorOut, "description": "No such item, or no profile carries its email"},
                           409: {"model": ErrorOut, "description": "A sweep is running; retry later"}})
    def clear_user_data(request: Request, blacklist_id: str) -> JSONResponse:
        # A sync endpoint: FastAPI runs it in a worker thread, so the server keeps answering meanwhile.
        _reject_unknown_params(request)
        blacklist_id = _checked_id(blacklist_id)
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
        _reject_unknown_params(request)
        result = registry.set_status(user_id=user_id, blacklisted=body.blacklisted, channel=CHANNEL)
        if not authenticated:
            return {"blacklisted": body.blacklisted}
        return result

    @app.get("/users/{user_id}/blacklist-status", tags=["CrossEngage"], summary="A user's blacklist status",
             responses={200: {"model": StatusOut}})
    def get_status(request: Request, user_id: str) -> dict[str, Any]:
        _reject_unknown_params(request)
        require_disclosure("reading a blacklist status")
        return registry.status(user_id=user_id)

    @app.post("/events", tags=["CrossEngage"], summary="Blacklisted / Whitelisted system events",
              responses={200: {"model": EventsOut}},
              description="Events named `Blacklisted` or `Whitelisted` set the status of the addressed "
                          "user (`id`) or lead (`email` + optional `businessUnit`); the latest timestamp "
                          "wins. Other event names are accepted and ignored: nothing of them is stored. "
                          "The batch is validated as a whole; on any error nothing is applied.")
    def post_events(request: Request, body: EventsIn) -> dict[str, Any]:
        _reject_unknown_params(request)
        if body.id is None and body.email is None:
            raise InputError("events: give 'id' (external user id) or 'email' (+ 'businessUnit')")
        if body.businessUnit is not None and body.email is None:
            raise InputError("events: 'businessUnit' goes with 'email' (a lead)")
        lines, ignored, errors = [], 0, []
        for n, item in enumerate(body.events):
            if item.event not in COMMAND_EVENTS:
                if item.event.lower() in {e.lower() for e in COMMAND_EVENTS}:
                    errors.append(f"events[{n}]: event names are case-sensitive: use one of "
                                  f"{', '.join(COMMAND_EVENTS)}")
                ignored += 1
                continue
            line = {"id": body.id, "email": body.email, "businessUnit": body.businessUnit,
                    "event": item.event, "timestamp": item.timestamp}
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
        return summary

    return Guard(app, api_key)
