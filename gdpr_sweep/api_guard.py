"""The ASGI layer around the API: API keys (401, 403), body limit (413), media type (415, a missing
`Content-Type` is read as JSON), path spelling (trailing slash, case of the documented segments) and
an access log that names the route template, never path values, query strings or bodies.

Two keys, two roles (docs/decisions/0262-auditor-access.md): the **blacklist key** reads and changes
the blacklist (every path but the reports); the **auditor key** reads the reports (every path under
`/api/reports`, `REPORTS`) and nothing else. Each key is refused (403) where the other one is needed,
so a leaked auditor key cannot touch the blacklist and the blacklist key is never handed to an auditor.
`/healthz` needs no key; `/openapi.json` takes either."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("gdpr_sweep.api")

MAX_BODY_BYTES = 64 * 1024
"""Request bodies above this size are refused with 413 before they are parsed."""
HEALTH_PATH = "/healthz"
OPENAPI_PATH = "/openapi.json"
REPORTS = "/api/reports"
"""Every path under this prefix is the auditor's: a route added under it is auditor-only by construction."""
BLACKLISTS = "/api/v1.0/blacklists"
HOLDS = "/api/v1.0/holds"
ROUTES = (BLACKLISTS, BLACKLISTS + "/{blacklist_id}", BLACKLISTS + "/{blacklist_id}/ClearUserData",
          "/users/{user_id}/blacklist-status", "/events", HEALTH_PATH, "/openapi.json",
          HOLDS, HOLDS + "/{hold_id}", HOLDS + "/{hold_id}/release")
"""Every path the API serves, spelled as documented; `canonical_path` maps the variants onto them."""


_TEMPLATES = [[None if part.startswith("{") else part.lower() for part in route.split("/")] for route in ROUTES]
_SPELLED = [route.split("/") for route in ROUTES]


def canonical_path(path: str) -> str:
    """The documented spelling of a request path: trailing slashes dropped, and the fixed segments
    matched case-insensitively (`/api/v1.0/Blacklists/{id}/clearuserdata/` is ClearUserData). Values
    (ids) are kept exactly. A path matching no route is returned unchanged (and answers 404)."""
    parts = (path.rstrip("/") or "/").split("/")
    for template, spelled in zip(_TEMPLATES, _SPELLED, strict=True):
        if len(template) == len(parts) and all(
                (t is None and p) or (t is not None and t == p.lower()) for t, p in zip(template, parts, strict=True)):
            return "/".join(p if t is None else s for t, s, p in zip(template, spelled, parts, strict=True))
    return path


async def _send_json(send: Send, status: int, obj: Any, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps(obj, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def is_report_path(path: str) -> bool:
    """Whether `path` is the auditor's (the reports), by prefix."""
    return path == REPORTS or path.startswith(REPORTS + "/")


def presented_keys(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Every API key a request presents: `Authorization: Bearer <key>`, `X-Api-Key: <key>`, and the
    source systems' own headers, `Authorization: epi-single <key>` (Optimizely) and `X-XNG-AuthToken`
    (CrossEngage), so their existing clients only change the base URL; and the password of
    `Authorization: Basic` (any user name), so a browser can open the reports."""
    keys = []
    for name, value in headers:
        name = name.lower()
        if name == b"authorization":
            scheme, _, credential = value.strip().partition(b" ")
            if scheme.lower() in (b"bearer", b"epi-single") and credential.strip():
                keys.append(credential.strip())
            elif scheme.lower() == b"basic" and credential.strip():
                try:
                    _, _, password = base64.b64decode(credential.strip(), validate=True).partition(b":")
                except ValueError:
                    continue
                if password:
                    keys.append(password)
        elif name in (b"x-api-key", b"x-xng-authtoken") and value.strip():
            keys.append(value.strip())
    return keys


def _matches(presented: list[bytes], key: bytes | None) -> bool:
    ok = False
    for candidate in presented:
        ok |= key is not None and hmac.compare_digest(candidate, key)  # constant time, every candidate compared
    return ok


class Guard:
    """API key checks (401 before anything else, 403 for the other role's key), request body limit
    (413), and an access log that names the route template, never the path values or query string
    (they carry emails and ids). `api_key` None: the blacklist paths are open (`--no-auth`, loopback);
    `auditor_key` None: the report paths answer 401 (no auditor access configured)."""

    def __init__(self, app: ASGIApp, api_key: str | None, max_body: int = MAX_BODY_BYTES,
                 auditor_key: str | None = None):
        self.app = app
        self.api_key = api_key.encode() if api_key is not None else None
        self.auditor_key = auditor_key.encode() if auditor_key is not None else None
        self.max_body = max_body

    def refusal(self, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, str] | None:
        """(status, message) when the request may not go on; None when it may."""
        if path == HEALTH_PATH:
            return None
        presented = presented_keys(headers)
        blacklist, auditor = _matches(presented, self.api_key), _matches(presented, self.auditor_key)
        if is_report_path(path):
            if auditor:
                return None
            if blacklist:
                return 403, "this is a blacklist key; the reports are read with the auditor key"
            if self.auditor_key is None:
                return 401, ("no auditor access configured: start the server with GDPR_SWEEP_AUDITOR_KEY "
                             "or --auditor-key-file")
            return 401, "missing or wrong auditor key: send it as 'Authorization: Bearer <key>'"
        if path == OPENAPI_PATH and auditor:
            return None
        if auditor and not blacklist:
            return 403, "the auditor key reads the reports (/api/reports) only; it cannot read or change the blacklist"
        if self.api_key is None or blacklist:
            return None
        return 401, "missing or wrong API key: send it as 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 0}

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        path = canonical_path(scope["path"])
        if path != scope["path"]:  # in place: the router records the matched route on this same dict
            scope["path"], scope["raw_path"] = path, quote(path).encode()
        try:
            await self._handle(scope, receive, logged_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or ("(health)" if scope["path"] == HEALTH_PATH else "(no route)")
            log.info("%s %s %s %.1fms", scope["method"], template, status["code"],
                     (time.perf_counter() - started) * 1000)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = self.refusal(scope["path"], scope["headers"])
        if refused is not None:
            status, message = refused
            challenge = (b'Basic realm="gdpr-sweep reports"' if is_report_path(scope["path"])
                         else b'Bearer realm="gdpr-sweep"')
            await _send_json(send, status, {"message": message},
                             headers=((b"www-authenticate", challenge),) if status == 401 else ())
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _send_json(send, 413, {"message": f"request body larger than {self.max_body} bytes"})
            return
        # Read the (small) body up front so a chunked upload cannot exceed the limit either.
        chunks, size, more = [], 0, True
        while more:
            event = await receive()
            if event["type"] == "http.disconnect":
                return
            chunk = event.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _send_json(send, 413, {"message": f"request body larger than {self.max_body} bytes"})
                return
            chunks.append(chunk)
            more = event.get("more_body", False)
        body = b"".join(chunks)
        media = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
        if body and media and media != b"application/json" and not media.endswith(b"+json"):
            await _send_json(send, 415, {"message": "send the request body as JSON with "
                                         "'Content-Type: application/json'"})
            return
        if body and not media:  # no Content-Type: read as JSON (vendor clients often send none)
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
            scope["headers"] = [*headers, (b"content-type", b"application/json")]
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


