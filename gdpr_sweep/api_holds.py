"""Retention holds over HTTP (§3, GDPR Art. 17(3)): the same operations as `gdpr-sweep hold`.

`GET /api/v1.0/holds` lists, `POST /api/v1.0/holds` places, `GET /api/v1.0/holds/{id}` shows and
`POST /api/v1.0/holds/{id}/release` releases. A hold keeps personal data from erasure, so every one of
these needs a blacklist key: a server started without one answers 401 here even on loopback, and a
key that only reads reports (the auditor's) is not a blacklist key. Placing and releasing are records
of the report hash chain (`pipelines/registry/holds.py`), with channel `api`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gdpr_sweep.api_context import CHANNEL, ApiContext
from gdpr_sweep.api_guard import HOLDS
from gdpr_sweep.api_query import reject_unknown_params
from pipelines.core.errors import InputError, NotFound
from pipelines.registry.holds import MAX_REASON, HoldStore, hold_json
from pipelines.registry.registry import utc_now

_UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class HoldIn(BaseModel):
    """`POST /api/v1.0/holds`: an entry, a dataset, or both; a reason; an optional end date."""

    model_config = ConfigDict(extra="forbid", strict=True)
    BlacklistId: str | None = Field(None, pattern=_UUID_PATTERN, description="The entry whose rows to keep")
    Dataset: str | None = Field(None, max_length=128, description="The dataset whose rows to keep")
    Reason: str = Field(max_length=MAX_REASON, examples=["invoice retention, HGB 257"],
                        description="The legal duty or claim; printed in reports and certificates (no emails)")
    Until: str | None = Field(None, max_length=64, examples=["2030-06-30"],
                              description="End date, ISO 8601; default: held until released")


class HoldOut(BaseModel):
    HoldId: str
    BlacklistId: str | None
    Dataset: str | None
    Reason: str
    Until: str | None
    PlacedAt: str
    Channel: str
    ReleasedAt: str | None
    ReleaseChannel: str | None
    SettledRun: str | None
    State: str = Field(description="active, released or expired")


class HoldListOut(BaseModel):
    total: int
    items: list[HoldOut]


def _hold_id(hold_id: str) -> str:
    if not re.fullmatch(_UUID_PATTERN, hold_id):
        raise NotFound("no retention hold with that id (a HoldId is a UUID)")
    return hold_id.lower()


def holds_router(ctx: ApiContext) -> APIRouter:
    """The hold routes. The guard lets only the blacklist key reach them (the auditor key gets 403);
    served without a key (`--no-auth`), every one of them refuses (401)."""
    store = HoldStore(ctx.settings)
    app = APIRouter(tags=["holds"])
    require_key = ctx.require_disclosure

    @app.get(HOLDS, summary="List retention holds", responses={200: {"model": HoldListOut}})
    def list_holds(request: Request, active: str | None = Query(None, description="true: only holds in force now")
                   ) -> dict[str, Any]:
        reject_unknown_params(request, ("active",))
        require_key("listing retention holds")
        if active not in (None, "true", "false"):
            raise InputError("active: expected true or false")
        now = utc_now()
        items = [hold_json(h, now) for h in store.list(include_ended=active != "true")]
        return {"total": len(items), "items": items}

    @app.post(HOLDS, status_code=201, summary="Place a retention hold",
              responses={201: {"model": HoldOut}})
    def place_hold(request: Request, body: HoldIn) -> JSONResponse:
        reject_unknown_params(request)
        require_key("placing a retention hold")
        bid = body.BlacklistId.lower() if body.BlacklistId else None
        hold = store.place(bid, body.Dataset, body.Reason, body.Until, channel=CHANNEL)
        return JSONResponse(hold_json(hold), status_code=201)

    @app.get(HOLDS + "/{hold_id}", summary="One retention hold", responses={200: {"model": HoldOut}})
    def get_hold(request: Request, hold_id: str) -> dict[str, Any]:
        reject_unknown_params(request)
        require_key("reading a retention hold")
        return hold_json(store.get(_hold_id(hold_id)))

    @app.post(HOLDS + "/{hold_id}/release", summary="Release a retention hold (the next sweep "
              "erases the rows it kept)", responses={200: {"model": HoldOut}})
    def release_hold(request: Request, hold_id: str) -> dict[str, Any]:
        reject_unknown_params(request)
        require_key("releasing a retention hold")
        return hold_json(store.release(_hold_id(hold_id), channel=CHANNEL))

    return app
