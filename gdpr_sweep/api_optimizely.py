"""Optimizely Profile Store's blacklist paths: `GET/POST /api/v1.0/blacklists`,
`DELETE /api/v1.0/blacklists/{id}` and `DELETE /api/v1.0/blacklists/{id}/ClearUserData`.

Paging, filter and sort follow the vendor's rules (`api_query.py`); decisions 0006 and 0231.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from gdpr_sweep.api_context import CHANNEL, ApiContext
from gdpr_sweep.api_guard import BLACKLISTS, log
from gdpr_sweep.api_models import BlacklistIn, ErrorOut, ItemOut, ListOut
from gdpr_sweep.api_query import (
    checked_id,
    non_negative_int,
    parse_filter,
    parse_order_by,
    reject_unknown_params,
)
from pipelines.core.errors import InputError
from pipelines.operations.targeted import clear_user_data as run_clear_user_data
from pipelines.registry.registry import DEFAULT_TOP


def optimizely_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["Optimizely"])

    @router.get(BLACKLISTS, summary="List blacklist items", responses={200: {"model": ListOut}})
    def list_blacklists(
        request: Request,
        filter_: str | None = Query(None, alias="$filter", examples=["Email eq 'anna@example.com' and "
                                                                     "Scope eq 'commercesite'"]),
        skip: str | None = Query(None, alias="$skip", description="default 0"),
        top: str | None = Query(None, alias="$top", description=f"default {DEFAULT_TOP}; skip + top < 10000"),
        order_by: str | None = Query(None, alias="$orderBy", examples=["Email desc"]),
    ) -> dict[str, Any]:
        reject_unknown_params(request, ("$filter", "$skip", "$top", "$orderBy", "$orderby"))
        ctx.require_disclosure("listing the blacklist")
        return list_page(ctx, request, filter_, skip, top, order_by)

    @router.post(BLACKLISTS, status_code=201, summary="Add a blacklist item",
                 responses={201: {"model": ItemOut, "description": "The new item, or the identical item that "
                                                                    "already existed (`Created`: false)"}})
    async def add_blacklist(request: Request, body: BlacklistIn) -> JSONResponse:
        # On the event loop: the write goes to the registry's group-commit writer and the answer waits
        # for its durable commit without holding a worker thread (decisions 0233, 0311).
        reject_unknown_params(request)
        record, created = await asyncio.wrap_future(
            ctx.registry.add_later(email=body.Email, user_id=body.UserId, scope=body.Scope, source=CHANNEL))
        if not ctx.authenticated:  # same answer whether or not the person was already blacklisted
            return JSONResponse({"BlacklistId": record.blacklist_id, "Email": record.email,
                                 "Scope": record.scope}, status_code=201)
        # 201 also for an item that already existed, as the vendor's clients expect (`Created` tells).
        return JSONResponse({**record.to_json(), "Created": created}, status_code=201)

    @router.delete(BLACKLISTS + "/{blacklist_id}", summary="Remove a blacklist item",
                   responses={404: {"model": ErrorOut, "description": "No such blacklist item"}})
    def remove_blacklist(request: Request, blacklist_id: str) -> JSONResponse:
        reject_unknown_params(request)
        record = ctx.registry.remove(checked_id(blacklist_id), channel=CHANNEL)
        return JSONResponse(f"Successfully removed blacklist item {record.blacklist_id}")

    @router.delete(BLACKLISTS + "/{blacklist_id}/ClearUserData",
                   summary="Remove the data of a blacklist item's person now (§4 ClearUserData)",
                   responses={404: {"model": ErrorOut, "description": "No such item, or no profile carries its email"},
                              409: {"model": ErrorOut, "description": "A sweep is running; retry later"}})
    def clear_user_data(request: Request, blacklist_id: str) -> JSONResponse:
        # A sync endpoint: FastAPI runs it in a worker thread, so the server keeps answering meanwhile.
        reject_unknown_params(request)
        blacklist_id = checked_id(blacklist_id)
        summary = run_clear_user_data(ctx.settings, blacklist_id)
        headers = {}
        if isinstance(summary, dict) and summary.get("report"):
            headers["X-Gdpr-Sweep-Report"] = str(summary["report"])
        log.info("ClearUserData done for blacklist item %s", blacklist_id)
        return JSONResponse(f"Successfully removed data for blacklist item {blacklist_id}", headers=headers)

    return router


def list_page(ctx: ApiContext, request: Request, filter_: str | None, skip: str | None, top: str | None,
              order_by: str | None) -> dict[str, Any]:
    """One page of the blacklist, by the vendor's `$filter`, `$skip`, `$top` and `$orderBy` rules."""
    if order_by is not None and request.query_params.get("$orderby") is not None:
        raise InputError("give $orderBy once")
    order_by = order_by if order_by is not None else request.query_params.get("$orderby")
    criteria = parse_filter(filter_) if filter_ is not None else {}
    field, descending = parse_order_by(order_by) if order_by is not None else ("CreatedAt", False)
    page = ctx.registry.list(**criteria, skip=non_negative_int("$skip", skip, 0),
                             top=non_negative_int("$top", top, DEFAULT_TOP),
                             order_by=field, descending=descending)
    return page.to_json()
