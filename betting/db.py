"""The database engine, sessions, and the few statements several components share."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, text, update
from sqlmodel import Session, col, select

from betting.domain import EventState, Market, score_bet
from betting.models import Bet, Event
from betting.settings import get_settings


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
        facts = event.to_facts()
        for market in Market:
            target = score_bet(market, facts.state, facts.score).value
            session.execute(
                update(Bet)
                .where(
                    col(Bet.event_id) == event.id,
                    col(Bet.market) == market.value,
                    col(Bet.state) != target,
                )
                .values(state=target)
            )
