"""CrossEngage's paths: `PUT/GET /users/{id}/blacklist-status` and `POST /events` (the `Blacklisted`
and `Whitelisted` system events). Decisions 0006 and 0231.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gdpr_sweep.api_context import CHANNEL, ApiContext
from gdpr_sweep.api_models import EventsIn, EventsOut, StatusIn, StatusOut
from gdpr_sweep.api_query import reject_unknown_params
from pipelines.core.errors import InputError
from pipelines.registry.registry import Registry, command_name, parse_feed_line


def crossengage_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["CrossEngage"])

    @router.put("/users/{user_id}/blacklist-status", summary="Set a user's blacklist status",
                responses={200: {"model": StatusOut}})
    def put_status(request: Request, user_id: str, body: StatusIn) -> dict[str, Any]:
        reject_unknown_params(request)
        result = ctx.registry.set_status(user_id=user_id, blacklisted=body.blacklisted, channel=CHANNEL)
        if not ctx.authenticated:
            return {"blacklisted": body.blacklisted}
        return result

    @router.get("/users/{user_id}/blacklist-status", summary="A user's blacklist status",
                responses={200: {"model": StatusOut}}, response_model=None)
    async def get_status(request: Request, user_id: str) -> JSONResponse:
        # On the event loop, not a worker thread: one indexed read of a WAL database (no lock to wait
        # for), cheaper than the two thread hand-offs a sync endpoint costs (decision 0233).
        reject_unknown_params(request)
        ctx.require_disclosure("reading a blacklist status")
        return JSONResponse(ctx.registry.status(user_id=user_id))

    @router.post("/events", summary="Blacklisted / Whitelisted system events",
                 responses={200: {"model": EventsOut}},
                 description="Events named `Blacklisted` or `Whitelisted` set the status of the addressed "
                             "user (`id`) or lead (`email` + optional `businessUnit`); the latest timestamp "
                             "wins. Other event names are accepted and ignored: nothing of them is stored. "
                             "The batch is validated as a whole; on any error nothing is applied.")
    def post_events(request: Request, body: EventsIn) -> dict[str, Any]:
        reject_unknown_params(request)
        lines, ignored = command_lines(body)
        counts = ctx.registry.apply_events(lines, channel=CHANNEL) if lines else {}
        summary: dict[str, Any] = {"received": len(body.events), "commands": len(lines), "ignored": ignored}
        if ctx.authenticated:
            summary["outcomes"] = {k: v for k, v in counts.items() if k not in ("lines", "ignored")}
            if lines:
                summary["outcome"] = events_outcome(ctx.registry, body, [line["event"] for line in lines])
        return summary

    return router


def events_outcome(registry: Registry, body: EventsIn, names: list[str]) -> str:
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


def command_lines(body: EventsIn) -> tuple[list[dict[str, Any]], int]:
    """The batch's `Blacklisted` / `Whitelisted` events as feed lines, and how many other events it had.
    The batch is checked as a whole: any bad event raises InputError naming it, and nothing applies."""
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
    return lines, ignored
