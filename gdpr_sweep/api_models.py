"""Request and response bodies of the HTTP API (`gdpr_sweep/api.py`), as documented in /openapi.json.

Bodies are strict: unknown fields and wrong JSON types are 400, nothing is coerced
(docs/decisions/0006-api-http.md). Read-only fields of a listed item may be echoed back in a POST
and are ignored (docs/decisions/0232-vendor-api-compatibility.md).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipelines.core.identity import MAX_EMAIL_LENGTH, MAX_USER_ID_LENGTH

MAX_EVENTS = 1000
"""Events in one `POST /events` batch."""
_UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


# -- request bodies -------------------------------------------------------------------------------
class _Body(BaseModel):
    """Bodies are strict: unknown fields and wrong JSON types are 400, nothing is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class BlacklistIn(_Body):
    """`POST /api/v1.0/blacklists` (Optimizely). `UserId` is this product's addition (CrossEngage id).

    A client may post an item as it was listed: `BlacklistId`, `CreatedAt`, `Source` and `Created`
    are read-only, checked for their type and shape, and ignored (the server assigns them)."""

    Email: str | None = Field(None, max_length=MAX_EMAIL_LENGTH, examples=["anna@example.com"])
    Scope: str | None = Field(None, max_length=64, examples=["DefaultScope"])
    UserId: str | None = Field(None, max_length=MAX_USER_ID_LENGTH)
    BlacklistId: str | None = Field(None, pattern=_UUID_PATTERN, description="Read-only: ignored")
    CreatedAt: str | None = Field(None, max_length=64, description="Read-only: ignored")
    Source: str | None = Field(None, max_length=16, description="Read-only: ignored")
    Created: bool | None = Field(None, description="Read-only: ignored")


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
    outcome: str | None = Field(None, description="What the commands left, in words: 'blacklisted', "
                                                  "'not blacklisted', or 'not blacklisted in that scope; "
                                                  "blacklisted in every scope'")


class ErrorOut(BaseModel):
    """Every error: a one-line message naming what is wrong (never echoing an email)."""

    message: str
