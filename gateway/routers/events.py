"""The line provider's API: operators publish events; anyone reads them."""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from starlette.concurrency import run_in_threadpool

from betting.messages import EventCreated, EventUpdated
from betting.models import EventCreate, EventPublic, EventUpdate, Page
from gateway import crud
from gateway.deps import Operator, SessionDep
from gateway.producer import PublisherDep
from gateway.schemas import EventQuery, Problem, created_at, errors

router = APIRouter(prefix="/events", tags=["events"])


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
    session: SessionDep,
    publisher: PublisherDep,
) -> EventPublic:
    """Publish a change to an event: only the fields sent. `{"state": "cancelled"}` calls
    the match off: every bet on it becomes void and pays its stake back."""
    now = datetime.now(UTC)
    # The database call blocks; keep it off the event loop.
    event = await run_in_threadpool(
        crud.preview_event_update, session=session, event_id=event_id, event_in=event_in, at=now
    )
    await publisher.publish(EventUpdated(event_id=event_id, sent_at=now, changes=event_in))
    return event


@router.get("", responses=errors(503))
def list_events(session: SessionDep, query: Annotated[EventQuery, Query()]) -> Page[EventPublic]:
    """Events, by event date."""
    events, total = crud.list_events(session=session, query=query)
    return Page[EventPublic](items=[event.to_public() for event in events], total=total)


@router.get("/{event_id}", responses=errors(404, 503))
def read_event(event_id: uuid.UUID, session: SessionDep) -> EventPublic:
    """One event."""
    return crud.get_event(session=session, event_id=event_id).to_public()


@router.delete(
    "/{event_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        **errors(401, 403, 404, 409, 503),
        409: {"description": "The event has bets: cancel it instead.", "model": Problem},
    },
)
def delete_event(event_id: uuid.UUID, _: Operator, session: SessionDep) -> None:
    """Delete an event nobody has bet on; one with bets is cancelled instead."""
    crud.delete_event(session=session, event_id=event_id)
