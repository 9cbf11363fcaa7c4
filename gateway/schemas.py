"""The gateway's own HTTP shapes: list filters, error bodies and their OpenAPI descriptions.

Entities (events, bets, pages) are defined once, in `betting.models`.
"""

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from betting.domain import BetState, EventState, Market
from betting.models import Money

# Postgres takes OFFSET as a bigint; anything larger is invalid input, not a server error.
MAX_OFFSET = 2**63 - 1

# Postgres text cannot hold NUL; a filter with one is invalid input, not a server error.
FilterText = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\x00]*$")]


class Pagination(BaseModel):
    limit: int = Field(default=50, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class EventQuery(Pagination):
    state: EventState | None = None
    type: FilterText | None = None
    open: bool | None = Field(
        default=None,
        description="true: only events a bet can be placed on now (created, deadline ahead).",
    )


class BetQuery(Pagination):
    event_id: uuid.UUID | None = None
    state: BetState | None = None
    market: Market | None = None
    user_id: FilterText | None = Field(
        default=None, description="A player only ever sees their own."
    )


class Problem(BaseModel):
    """FastAPI's error shape."""

    detail: Any


class OddsChangedDetail(BaseModel):
    message: str
    market: Market
    odds: Money = Field(description="The market's current odds: bet again at these.")


class OddsChanged(BaseModel):
    """The 409 of a bet whose `odds` are no longer the market's."""

    detail: OddsChangedDetail


class Status(BaseModel):
    status: Literal["ok"] = "ok"


_MEANING = {
    401: "No token, or an invalid or expired one.",
    403: "The token's role may not do this.",
    404: "Unknown, deleted, or not yours.",
    409: "Conflicts with the current state.",
    503: "Something it needs is unavailable: the database (or, for event writes, the broker).",
}
_AUTH_HEADER = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer (FastAPI documents 422)."""
    entries: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"description": _MEANING[code], "model": Problem}
        if code == 401:
            entry["headers"] = _AUTH_HEADER
        entries[code] = entry
    return entries


def created_at(code: int, description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entry of a success that points at a new resource."""
    location = {"description": "Where the resource can be read.", "schema": {"type": "string"}}
    return {code: {"description": description, "headers": {"Location": location}}}
