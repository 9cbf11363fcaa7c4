"""The database engine, sessions, and the few statements several components share."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    Engine,
    and_,
    case,
    create_engine,
    literal,
    null,
    text,
    update,
)
from sqlmodel import Session, col, select

from betting.domain import (
    SETTLEMENTS,
    BetState,
    EventFacts,
    EventState,
    Market,
    Settlement,
    score_bet,
)
from betting.models import Bet, Event
from betting.settings import get_settings

# The event writer notifies this channel when it records progress; the scorer listens on it.
PROGRESS_CHANNEL = "log_progress"


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine (a connection pool)."""
    settings = get_settings()
    return create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5},
    )


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    with Session(get_engine(), expire_on_commit=False) as session, session.begin():
        yield session


def rebase_versions(session: Session) -> None:
    """Forget the log positions recorded in the database.

    Called when the events topic has just been created: its offsets restart at 0, so the
    versions remembered from the old log would make every new message look stale.
    """
    session.execute(text("UPDATE events SET version = -1, score_version = -1"))
    session.execute(text("UPDATE bets SET scored_version = -1"))
    session.execute(text("DELETE FROM log_progress"))
    _settle_lost_updates(session)


def _settle_lost_updates(session: Session) -> None:
    """Give every bet the state its event says: updates still in the old log are gone."""
    for event in session.exec(select(Event).where(col(Event.state) != EventState.CREATED.value)):
        settle_bets(session, event.id, event.to_facts())


class StaleBets(NamedTuple):
    """The bets of one event and market whose state is not `target`, the one its score gives."""

    market: Market
    target: BetState
    where: ColumnElement[bool]


def stale_bets(event_id: uuid.UUID, facts: EventFacts) -> Iterator[StaleBets]:
    """The bets of an event whose state differs from what its state and score say.

    The bet scorer streams them after a change; the rebase settles them in place. One
    condition per market, so each is served by the (event_id, market, state) index.
    """
    for market in Market:
        target = score_bet(market, facts.state, facts.score)
        yield StaleBets(
            market,
            target,
            and_(
                col(Bet.event_id) == event_id,
                col(Bet.market) == market.value,
                col(Bet.state) != target.value,
            ),
        )


def payout_sql(
    state: ColumnElement[str],
    *,
    amount: ColumnExpressionArgument[Decimal],
    potential: ColumnExpressionArgument[Decimal],
) -> ColumnElement[Decimal | None]:
    """What a bet in `state` pays, in SQL over its `amount` and `potential` payout.

    The domain's `SETTLEMENTS`, phrased for the database: a `CASE` over the states that pay.
    """
    paid: dict[Settlement, ColumnExpressionArgument[Decimal]] = {
        Settlement.WINNINGS: potential,
        Settlement.NOTHING: literal(Decimal("0.00")),
        Settlement.STAKE: amount,
    }
    return case(
        *(
            (state == bet_state.value, paid[settlement])
            for bet_state, settlement in SETTLEMENTS.items()
            if settlement is not Settlement.PENDING
        ),
        else_=null(),
    )


def settle_bets(session: Session, event_id: uuid.UUID, facts: EventFacts) -> None:
    """Give the event's stale bets, in place, the state its facts say and what that pays."""
    for stale in stale_bets(event_id, facts):
        target = stale.target.value
        session.execute(
            update(Bet)
            .where(stale.where)
            .values(
                state=target,
                payout=payout_sql(
                    literal(target), amount=col(Bet.amount), potential=col(Bet.potential_payout)
                ),
            )
        )


def has_bets(session: Session, event_id: uuid.UUID) -> bool:
    """Whether anyone has bet on the event (one index probe)."""
    return (
        session.exec(select(Bet.id).where(col(Bet.event_id) == event_id).limit(1)).first()
        is not None
    )
