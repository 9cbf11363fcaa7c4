"""The operator's book: their position on an event, from the bets placed on it."""

import uuid

from fastapi import APIRouter

from gateway.book import read_book
from gateway.deps import Db, Operator
from gateway.schemas import BookPublic, errors

router = APIRouter(prefix="/events", tags=["events"])


@router.get("/{event_id}/book", responses=errors(401, 403, 404, 503))
async def read_event_book(event_id: uuid.UUID, _: Operator, db: Db) -> BookPublic:
    """Per market the bets, their stakes and potential payouts; per outcome what the operator
    keeps if it happens; once the event is finished or cancelled, what it kept."""
    event, book = await db.run(read_book, event_id=event_id)
    return BookPublic.from_book(event, book)
