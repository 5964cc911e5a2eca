"""Errors of the HTTP API as JSON `{"message": ...}` with a status code, and its OpenAPI document.

Messages name where and what, never the offending input (it may be an email); the server log gets the
route template, never a path value, a query string or a body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gdpr_sweep.api_guard import log
from gdpr_sweep.api_models import ErrorOut
from pipelines.core.errors import (
    Busy,
    ConfigError,
    DataFileError,
    InputError,
    NotFound,
    SchemaError,
    SweepError,
)


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


def install_error_handlers(app: FastAPI) -> None:
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


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Malformed JSON, wrong type, unknown field, invalid value"},
    401: {"model": ErrorOut, "description": "Missing or wrong API key"},
    413: {"model": ErrorOut, "description": "Request body over 64 KiB"},
    415: {"model": ErrorOut, "description": "Request body is not sent as application/json"},
}


def openapi_without_422(app: FastAPI) -> Callable[[], dict[str, Any]]:
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
