"""The bet stream's fan-out: one reader of the change log per process, many subscribers.

The feed LISTENs on `bet_changes` (a notification per transaction that appended to the log),
reads what became readable once for every subscriber, and hands each change to those whose
interest it matches, as a ready-encoded Server-Sent Event. A subscriber's queue is bounded:
one that cannot keep up is dropped with a final comment and resumes from its cursor.

A subscriber that resumes (`Last-Event-ID`) first reads what it missed from the log itself,
page by page, up to where the feed has got, then joins the feed under its lock, so no change
falls between the two and none comes twice. No Kafka client: the log is in Postgres.
"""

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from typing import Any, TypeVar

import anyio
import psycopg2
from sqlmodel import Session
from sse_starlette import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from betting.db import BET_CHANGES_CHANNEL, get_engine
from gateway.changes import (
    Change,
    Cursor,
    Interest,
    Page,
    Selection,
    prune,
    read_changes,
    read_head,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")

SEP = "\n"
# Without a notification the feed still reads this often: one lost on a reconnect is late,
# never lost.
IDLE_POLL_S = 5.0
# While an entry waits for an older transaction to end, read again after this, doubling.
RETRY_FIRST_S, RETRY_MAX_S = 0.01, 0.2
RECONNECT_S = 1.0
PRUNE_EVERY_S = 3600.0


def comment(text: str) -> bytes:
    return ServerSentEvent(comment=text, sep=SEP).encode()


LIVE = comment("live: changes now arrive as they happen")
TOO_SLOW = comment("too slow: dropped; reconnect with Last-Event-ID to resume")
CLOSING = comment("the server is shutting down; reconnect with Last-Event-ID to resume")


def encode(change: Change) -> bytes:
    """One `bet` event: the bet as `GET /bets/{id}` showed it, its cursor as the id.

    Framed by hand, not by `ServerSentEvent`: JSON never holds a raw line break, so the data
    is one `data:` line, and this runs once per change on the stream's hottest path.
    """
    data = change.bet.model_dump_json()
    return f"id: {change.cursor}{SEP}event: bet{SEP}data: {data}{SEP}{SEP}".encode()


def _in_session(read: Callable[..., T], **kwargs: Any) -> T:
    with Session(get_engine()) as session:
        return read(session=session, **kwargs)


class Subscriber:
    """One client's bounded queue of encoded events, and whether it has been closed."""

    def __init__(self, interest: Interest, after: Cursor, capacity: int) -> None:
        self.interest = interest
        self.after = after
        self._capacity = capacity
        self._chunks: deque[bytes] = deque()
        self._ready = asyncio.Event()
        self.farewell: bytes | None = None

    def offer(self, cursor: Cursor, chunk: bytes) -> bool:
        """Queue a change past this subscriber's cursor; False if that overflowed it."""
        if cursor <= self.after:
            return True
        if len(self._chunks) >= self._capacity:
            self.close(TOO_SLOW)
            return False
        self._chunks.append(chunk)
        self.after = cursor
        self._ready.set()
        return True

    def close(self, farewell: bytes) -> None:
        """End the stream with `farewell`; what is still queued is dropped (it is in the log)."""
        if self.farewell is None:
            self.farewell = farewell
            self._chunks.clear()
            self._ready.set()

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            while self._chunks:
                yield self._chunks.popleft()
            if self.farewell is not None:
                yield self.farewell
                return
            self._ready.clear()
            await self._ready.wait()


class _Listener:
    """A connection of its own LISTENing on the log's channel, read from the event loop."""

    def __init__(self, wake: asyncio.Event) -> None:
        self._wake = wake
        self._loop = asyncio.get_running_loop()
        self.lost = False

    async def __aenter__(self) -> "_Listener":
        engine = get_engine()
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        # Keepalives: a peer that vanished without a word is noticed, then reconnected.
        kwargs.update(connect_timeout=5, keepalives=1, keepalives_idle=30, keepalives_count=3)
        self._conn = await asyncio.to_thread(partial(psycopg2.connect, *args, **kwargs))
        self._conn.autocommit = True
        with self._conn.cursor() as cursor:
            cursor.execute(f"LISTEN {BET_CHANGES_CHANNEL}")
        self._loop.add_reader(self._conn.fileno(), self._readable)
        return self

    def _readable(self) -> None:
        try:
            self._conn.poll()
        except psycopg2.Error:
            log.warning("bet stream: lost the LISTEN connection; reconnecting")
            self.lost = True
            self._loop.remove_reader(self._conn.fileno())
            self._wake.set()
            return
        if self._conn.notifies:
            self._conn.notifies.clear()
            self._wake.set()

    async def __aexit__(self, *_: object) -> None:
        if not self.lost:
            self._loop.remove_reader(self._conn.fileno())
        self._conn.close()


def _discard(index: dict[K, set[Subscriber]], key: K, subscriber: Subscriber) -> None:
    """Take `subscriber` out of `index[key]`, and the key with its last subscriber."""
    group = index.get(key)
    if group is not None:
        group.discard(subscriber)
        if not group:
            del index[key]


class ChangeFeed:
    """The process's one reader of the change log, and its subscribers."""

    def __init__(self, *, queue_size: int) -> None:
        self._queue_size = queue_size
        self.head: Cursor | None = None
        self._everyone: set[Subscriber] = set()
        self._by_user: dict[str, set[Subscriber]] = {}
        self._by_event: dict[uuid.UUID, set[Subscriber]] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # The feed's reads never queue behind catch-ups, which use the shared thread pool.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="bet-feed")

    async def open(self) -> Cursor:
        """Start reading the log (once); raises the database's error if it cannot."""
        async with self._lock:
            if self.head is None:
                self.head = await run_in_threadpool(_in_session, read_head)
                self._task = asyncio.create_task(self._run(), name="bet-feed")
            return self.head

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        for subscriber in self._all():
            subscriber.close(CLOSING)
        self._executor.shutdown(wait=False)

    async def stream(
        self, interest: Interest, after: Cursor | None, shutdown: anyio.Event
    ) -> AsyncIterator[bytes]:
        """A subscriber's events: what it missed after `after`, then the live ones."""
        await self.open()
        # Without a cursor, start past what is readable now: the feed itself may not have
        # read a change that committed before this request came.
        start: Cursor = (
            after if after is not None else await run_in_threadpool(_in_session, read_head)
        )
        subscriber = Subscriber(interest, start, self._queue_size)
        cursor = start
        while not shutdown.is_set():
            target = self.head
            assert target is not None, "opened above"
            if cursor >= target:
                async with self._lock:
                    if cursor >= target == self.head:
                        subscriber.after = cursor
                        self._attach(subscriber)
                        break
                continue
            page: Page = await run_in_threadpool(
                partial(
                    _in_session,
                    read_changes,
                    after=cursor,
                    selection=Selection.of([interest]),
                    upto=target,
                )
            )
            for change in page.changes:
                if interest.matches(change.bet.user_id, change.bet.event_id):
                    yield encode(change)
            cursor = page.scanned_to
        else:
            yield CLOSING
            return
        watcher = asyncio.create_task(self._close_on(shutdown, subscriber))
        try:
            yield LIVE
            async for chunk in subscriber.chunks():
                yield chunk
        finally:
            watcher.cancel()
            self._detach(subscriber)

    @staticmethod
    async def _close_on(shutdown: anyio.Event, subscriber: Subscriber) -> None:
        await shutdown.wait()
        subscriber.close(CLOSING)

    def _index(self, subscriber: Subscriber) -> set[Subscriber]:
        interest = subscriber.interest
        if interest.user_id is not None:
            return self._by_user.setdefault(interest.user_id, set())
        if interest.event_id is not None:
            return self._by_event.setdefault(interest.event_id, set())
        return self._everyone

    def _attach(self, subscriber: Subscriber) -> None:
        self._index(subscriber).add(subscriber)

    def _detach(self, subscriber: Subscriber) -> None:
        interest = subscriber.interest
        if interest.user_id is not None:
            _discard(self._by_user, interest.user_id, subscriber)
        elif interest.event_id is not None:
            _discard(self._by_event, interest.event_id, subscriber)
        else:
            self._everyone.discard(subscriber)

    def _all(self) -> list[Subscriber]:
        return [
            *self._everyone,
            *(s for group in self._by_user.values() for s in group),
            *(s for group in self._by_event.values() for s in group),
        ]

    def _dispatch(self, changes: list[Change]) -> None:
        for change in changes:
            bet = change.bet
            chunk: bytes | None = None
            for subscriber in [
                *self._everyone,
                *self._by_user.get(bet.user_id, ()),
                *self._by_event.get(bet.event_id, ()),
            ]:
                if not subscriber.interest.matches(bet.user_id, bet.event_id):
                    continue
                chunk = chunk or encode(change)
                if not subscriber.offer(change.cursor, chunk):
                    log.info("bet stream: dropped a subscriber %d behind", self._queue_size)
                    self._detach(subscriber)

    async def _cycle(self) -> bool:
        """Read and hand out everything readable; True if some entry must wait."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            while True:
                assert self.head is not None
                read = partial(
                    _in_session,
                    read_changes,
                    after=self.head,
                    selection=Selection.of([s.interest for s in self._all()]),
                )
                page = await loop.run_in_executor(self._executor, read)
                self._dispatch(page.changes)
                self.head = page.scanned_to
                if not page.more:
                    return page.pending

    async def _run(self) -> None:
        delay: float | None = None
        while True:
            try:
                async with _Listener(self._wake) as listener:
                    self._wake.set()  # whatever was appended while nobody listened
                    while not listener.lost:
                        with suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), delay or IDLE_POLL_S)
                        self._wake.clear()
                        if await self._cycle():
                            delay = min(RETRY_MAX_S, 2 * delay) if delay else RETRY_FIRST_S
                        else:
                            delay = None
            except Exception:  # the database went away: keep trying, subscribers keep waiting
                log.warning("bet stream: reading the log failed; retrying", exc_info=True)
                await asyncio.sleep(RECONNECT_S)


async def prune_periodically(retention_s: float) -> None:
    """Forget changes older than `retention_s`, hourly; every gateway does (it is idempotent)."""
    while True:
        started = time.monotonic()
        try:
            removed = await run_in_threadpool(_in_session, prune, older_than_s=retention_s)
            if removed:
                log.info("bet stream: forgot %d log entries (%.0f s old)", removed, retention_s)
        except Exception:
            log.warning("bet stream: pruning the log failed", exc_info=True)
        await asyncio.sleep(max(0.0, PRUNE_EVERY_S - (time.monotonic() - started)))
