"""The line provider's API: operators publish events; anyone reads them."""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from betting.messages import EventCreated, EventUpdated
from betting.models import EventCreate, EventPublic, EventUpdate, Page
from gateway import crud
from gateway.deps import Db, Operator
from gateway.edge import ExactJSONRoute
from gateway.producer import PublisherDep
from gateway.schemas import EventQuery, Problem, created_at, errors

router = APIRouter(prefix="/events", tags=["events"], route_class=ExactJSONRoute)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **created_at(202, "Accepted; readable once the event writer has stored it."),
        **errors(401, 403, 503),
    },
)
async def create_event(
    event_in: EventCreate, _: Operator, publisher: PublisherDep, response: Response
) -> EventPublic:
    """Publish a new event."""
    event_id, now = uuid.uuid4(), datetime.now(UTC)
    await publisher.publish(EventCreated(event_id=event_id, sent_at=now, event=event_in))
    response.headers["Location"] = f"/events/{event_id}"
    return EventPublic.accepted(event_id, event_in, now)


@router.patch(
    "/{event_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        202: {"description": "Accepted: the event as it will be once the change is applied."},
        **errors(401, 403, 404, 409, 503),
        409: {
            "description": "A transition or score change the event's state forbids, any change "
            "to a finished or cancelled event, or new teams once the event has bets.",
            "model": Problem,
        },
    },
)
async def update_event(
    event_id: uuid.UUID,
    event_in: EventUpdate,
    _: Operator,
    db: Db,
    publisher: PublisherDep,
) -> EventPublic:
    """Publish a change to an event: only the fields sent. `{"state": "cancelled"}` calls
    the match off: every bet on it becomes void and pays its stake back."""
    now = datetime.now(UTC)
    event = await db.run(crud.preview_event_update, event_id=event_id, event_in=event_in, at=now)
    await publisher.publish(EventUpdated(event_id=event_id, sent_at=now, changes=event_in))
    return event


@router.get("", responses=errors(503))
async def list_events(db: Db, query: Annotated[EventQuery, Query()]) -> Page[EventPublic]:
    """Events, by event date."""
    events, total = await db.run(crud.list_events, query=query)
    return Page[EventPublic](items=[event.to_public() for event in events], total=total)


@router.get("/{event_id}", responses=errors(404, 503))
async def read_event(event_id: uuid.UUID, db: Db) -> EventPublic:
    """One event."""
    return (await db.run(crud.get_event, event_id=event_id)).to_public()


@router.delete(
    "/{event_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        **errors(401, 403, 404, 409, 503),
        409: {"description": "The event has bets: cancel it instead.", "model": Problem},
    },
)
async def delete_event(event_id: uuid.UUID, _: Operator, db: Db) -> None:
    """Delete an event nobody has bet on; one with bets is cancelled instead."""
    await db.run(crud.delete_event, event_id=event_id)
