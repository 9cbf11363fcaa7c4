"""The gateway's own HTTP shapes: list filters, error bodies and their OpenAPI descriptions.

Entities (events, bets, pages) are defined once, in `betting.models`.
"""

import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, StringConstraints

from betting.domain import BetState, Book, EventState, Market
from betting.models import Balance, Event, Money, Payout, ScoreField

T = TypeVar("T")

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


class PerMarket(BaseModel, Generic[T]):
    """One value for each market (and so for each outcome of the match)."""

    team_1: T
    team_2: T
    draw: T

    @classmethod
    def of(cls, values: Mapping[Market, T]) -> "PerMarket[T]":
        return cls(**{market.value: values[market] for market in Market})


class MarketBook(BaseModel):
    bets: int = Field(description="How many bets are on this market.")
    stake: Payout = Field(description="Their stakes added up.")
    potential_payout: Payout = Field(description="What they pay if this outcome happens.")


class BookPublic(BaseModel):
    """The bookmaker's position on an event, computed from its bets."""

    event_id: uuid.UUID
    state: EventState
    score: ScoreField
    bets: int = Field(description="Bets on the event.")
    stake: Payout = Field(description="Every stake on the event added up.")
    markets: PerMarket[MarketBook]
    result_if: PerMarket[Balance] = Field(
        description="The operator's result if this outcome happens: every stake less the "
        "potential payouts of the bets on that market (negative: a loss)."
    )
    result: Balance | None = Field(
        description="Once the event is finished or cancelled: every stake less every payout "
        "(a void bet pays its stake back); null while it can still change."
    )

    @classmethod
    def from_book(cls, event: Event, book: Book) -> "BookPublic":
        facts = event.to_facts()
        return cls(
            event_id=event.id,
            state=facts.state,
            score=facts.score,
            bets=book.bets,
            stake=book.stake,
            markets=PerMarket[MarketBook].of(
                {
                    market: MarketBook(
                        bets=totals.bets,
                        stake=totals.stake,
                        potential_payout=totals.potential_payout,
                    )
                    for market, totals in book.markets.items()
                }
            ),
            result_if=PerMarket[Balance].of({market: book.result_if(market) for market in Market}),
            result=book.settled_result(facts.state, facts.score),
        )
