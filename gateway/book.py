"""The operator's book on an event, read from the running totals the database keeps.

`book_totals` (migration 0003) holds, per market and shard, the bets' count, stakes and
potential payouts; the book sums a few dozen rows however many bets there are.
"""

import uuid
from decimal import Decimal

from sqlmodel import Session, col, func, select

from betting.domain import Book, Market, MarketTotals
from betting.models import BookTotal, Event
from gateway.crud import get_event


def read_book(*, session: Session, event_id: uuid.UUID) -> tuple[Event, Book]:
    """The event (unknown or deleted: `NotFound`) and the totals of its bets per market."""
    event = get_event(session=session, event_id=event_id)
    rows = session.exec(
        select(
            BookTotal.market,
            func.sum(BookTotal.bets),
            func.sum(BookTotal.stake),
            func.sum(BookTotal.potential_payout),
        )
        .where(col(BookTotal.event_id) == event_id)
        .group_by(col(BookTotal.market))
    ).all()
    totals = {
        Market(market): MarketTotals(int(bets), Decimal(stake), Decimal(potential))
        for market, bets, stake, potential in rows
    }
    return event, Book.of(totals)
