"""The bet stream: `GET /bets/stream`, Server-Sent Events of bet state changes.

Its own router, included before the bets router so `/bets/{bet_id}` does not take `stream`
for an id. The router's lifespan owns the process's change feed and the log's pruning; the bet
maker gets both by including it.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, FastAPI, Header, HTTPException, Request, status
from sse_starlette import EventSourceResponse, ServerSentEvent

from betting.auth import Role
from betting.settings import get_settings
from gateway.changes import CURSOR_PATTERN, Cursor, Interest
from gateway.deps import CurrentUser
from gateway.feed import SEP, ChangeFeed, prune_periodically
from gateway.schemas import errors

# A client that takes longer than this to accept one chunk is gone: its response ends.
SEND_TIMEOUT_S = 30.0
# After a shutdown begins, how long a stream has to send its farewell and end cleanly.
SHUTDOWN_GRACE_S = 2.0


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    app.state.bet_feed = ChangeFeed(queue_size=settings.stream_queue_size)
    pruner = asyncio.create_task(prune_periodically(settings.stream_retention_s))
    try:
        yield
    finally:
        pruner.cancel()
        await app.state.bet_feed.close()


router = APIRouter(prefix="/bets", tags=["bets"], lifespan=lifespan)


def _a_cursor_or_absent(schema: dict[str, Any]) -> None:
    """A header is sent or not, never `null`: document the cursor alone."""
    schema.pop("anyOf", None)
    schema.update(type="string", pattern=CURSOR_PATTERN)


LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=CURSOR_PATTERN,
        description="The `id` of the last event received: the stream resumes after it.",
        json_schema_extra=_a_cursor_or_absent,
    ),
]

_EVENT_STREAM = {
    "description": "Server-Sent Events: `event: bet`, `id: <cursor>`, `data: <the bet>`; "
    "comment lines keep the connection alive.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={200: _EVENT_STREAM, **errors(401, 503)},
)
async def stream_bets(
    request: Request,
    user: CurrentUser,
    event_id: uuid.UUID | None = None,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """One `bet` event per change of a bet's state: a player's own bets, an operator's all
    (or one event's). Reconnect with `Last-Event-ID` to get what you missed, then the rest."""
    # The header's pattern has been checked: it parses.
    after = None if last_event_id is None else Cursor.parse(last_event_id)
    interest = Interest(user_id=None if user.role is Role.OPERATOR else user.id, event_id=event_id)
    feed: ChangeFeed = request.app.state.bet_feed
    await feed.open()  # a database that cannot be read is a 503 now, not a silent stream
    shutdown = anyio.Event()
    settings = get_settings()
    return EventSourceResponse(
        feed.stream(interest, after, shutdown),
        ping=settings.stream_keepalive_s,
        ping_message_factory=lambda: ServerSentEvent(comment="keep-alive", sep=SEP),
        sep=SEP,
        send_timeout=SEND_TIMEOUT_S,
        shutdown_event=shutdown,
        shutdown_grace_period=SHUTDOWN_GRACE_S,
    )


@router.api_route("/stream", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def stream_takes_only_get() -> None:
    """`/bets/stream` is a resource, not a bet id: another method is a 405, not a malformed id."""
    raise HTTPException(status.HTTP_405_METHOD_NOT_ALLOWED, "Method Not Allowed")
