"""The bet stream: `GET /bets/stream`, Server-Sent Events of bet state changes.

Its own router, included before the bets router so `/bets/{bet_id}` does not take `stream`
for an id. The router's lifespan owns the process's change feed and the log's pruning; the bet
maker gets both by including it.
"""

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, HTTPException, Request, status
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from betting.auth import Role
from betting.settings import get_settings
from gateway.changes import CURSOR_PATTERN, Cursor, Interest
from gateway.deps import CurrentUser
from gateway.feed import ChangeFeed, prune_periodically
from gateway.schemas import errors


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    feed = ChangeFeed(
        queue_size=settings.stream_queue_size, keep_alive_s=settings.stream_keepalive_s
    )
    app.state.bet_feed = feed
    app.state.drain = feed.drain  # `gateway.app.serve` calls it as shutdown begins
    pruner = asyncio.create_task(prune_periodically(settings.stream_retention_s))
    try:
        yield
    finally:
        pruner.cancel()
        await feed.close()


class EventStreamResponse(Response):
    """Server-Sent Events: each chunk of `events` (ready-encoded) in one send, as it comes.

    Lean on purpose: one task per stream writes, another waits for the client to go
    (`on_disconnect`); keep-alives and a send that never ends are the feed's business
    (`ChangeFeed._tend`), not a timer per send.
    """

    media_type = "text/event-stream"

    def __init__(
        self, events: AsyncGenerator[bytes], on_disconnect: Callable[[], None] = lambda: None
    ) -> None:
        # No body yet, so no Content-Length (Response.__init__ would declare 0): chunked.
        self.status_code = status.HTTP_200_OK
        self.background = None
        # No caching, and no buffering by a proxy (nginx reads X-Accel-Buffering).
        self.init_headers({"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self._events = events
        self._on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        watcher = asyncio.create_task(self._watch(receive))
        try:
            async with aclosing(self._events) as events:
                async for chunk in events:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._on_disconnect()


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
    response_class=EventStreamResponse,
    status_code=status.HTTP_200_OK,
    responses={200: _EVENT_STREAM, **errors(401, 503)},
)
async def stream_bets(
    request: Request,
    user: CurrentUser,
    event_id: uuid.UUID | None = None,
    last_event_id: LastEventId = None,
) -> EventStreamResponse:
    """One `bet` event per change of a bet's state: a player's own bets, an operator's all
    (or one event's). Reconnect with `Last-Event-ID` to get what you missed, then the rest."""
    # The header's pattern has been checked: it parses.
    after = None if last_event_id is None else Cursor.parse(last_event_id)
    interest = Interest(user_id=None if user.role is Role.OPERATOR else user.id, event_id=event_id)
    feed: ChangeFeed = request.app.state.bet_feed
    # A database that cannot be read is a 503 now, not a silent stream.
    subscriber = await feed.subscribe(interest, after)
    return EventStreamResponse(feed.events(subscriber), on_disconnect=lambda: subscriber.close(b""))


@router.api_route("/stream", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def stream_takes_only_get() -> None:
    """`/bets/stream` is a resource, not a bet id: another method is a 405, not a malformed id."""
    raise HTTPException(status.HTTP_405_METHOD_NOT_ALLOWED, "Method Not Allowed")
