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
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from typing import Any, TypeVar

import psycopg2
from sqlmodel import Session
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
# Queued events written to a client in one send: a few sends for a big round, and at most
# this many events (some tens of kB) pushed into a socket the client has stopped reading.
BATCH = 64
# A client that has not taken one send in this long is gone: its response ends.
SEND_TIMEOUT_S = 30.0
# After a shutdown begins, how long the streams have to send their farewell and end.
SHUTDOWN_GRACE_S = 2.0


def comment(text: str) -> bytes:
    """An SSE comment line: clients ignore it, proxies see traffic."""
    return f": {text}{SEP}{SEP}".encode()


LIVE = comment("live: changes now arrive as they happen")
KEEP_ALIVE = comment("keep-alive")
TOO_SLOW = comment("too slow: dropped; reconnect with Last-Event-ID to resume")
CLOSING = comment("the server is shutting down; reconnect with Last-Event-ID to resume")


def encode(change: Change) -> bytes:
    """One `bet` event: the bet as `GET /bets/{id}` shows it, its cursor as the id.

    JSON never holds a raw line break, so the data is one `data:` line.
    """
    return f"id: {change.cursor}{SEP}event: bet{SEP}data: {change.data}{SEP}{SEP}".encode()


def _in_session(read: Callable[..., T], **kwargs: Any) -> T:
    with Session(get_engine()) as session:
        return read(session=session, **kwargs)


class Subscriber:
    """One client's bounded queue of encoded events, and whether it has been closed.

    The feed fills it; the client's response empties it, everything waiting in one send.
    """

    def __init__(self, interest: Interest, after: Cursor, capacity: int) -> None:
        self.interest = interest
        self.after = after
        self._capacity = capacity
        self._chunks: list[bytes] = []
        self._ready = asyncio.Event()
        self.farewell: bytes | None = None
        self.sending_since: float | None = None
        """When the send in progress began (loop time); None between sends."""
        self.task: asyncio.Task[Any] | None = None
        """The task writing this subscriber's response: cancelled if a send never ends."""

    def offer(self, cursor: Cursor, chunk: bytes) -> bool:
        """Queue a change past this subscriber's cursor; False if that overflowed it."""
        if cursor <= self.after or self.farewell is not None:
            return True
        if len(self._chunks) >= self._capacity:
            self.close(TOO_SLOW)
            return False
        self._chunks.append(chunk)
        self.after = cursor
        self._ready.set()
        return True

    def offer_all(self, entries: list[tuple[Cursor, bytes]]) -> bool:
        """`offer` each of `entries` (in cursor order) at once; False if they overflowed it."""
        if self.farewell is not None:
            return True
        if entries and entries[0][0] <= self.after:
            entries = [entry for entry in entries if entry[0] > self.after]
        if not entries:
            return True
        if len(self._chunks) + len(entries) > self._capacity:
            self.close(TOO_SLOW)
            return False
        self._chunks.extend(chunk for _, chunk in entries)
        self.after = entries[-1][0]
        self._ready.set()
        return True

    def keep_alive(self) -> None:
        """A comment, unless events are already waiting to be sent."""
        if not self._chunks and self.farewell is None:
            self._chunks.append(KEEP_ALIVE)
            self._ready.set()

    def close(self, farewell: bytes) -> None:
        """End the stream with `farewell`; what is still queued is dropped (it is in the log)."""
        if self.farewell is None:
            self.farewell = farewell
            self._chunks.clear()
            self._ready.set()

    async def batches(self) -> AsyncIterator[bytes]:
        """What is queued, up to `BATCH` events at a time, then the farewell."""
        while True:
            if self._chunks:
                batch = self._chunks[:BATCH]
                del self._chunks[:BATCH]
                yield b"".join(batch)
            elif self.farewell is not None:
                yield self.farewell
                return
            else:
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

    def __init__(self, *, queue_size: int, keep_alive_s: float) -> None:
        self._queue_size = queue_size
        self._keep_alive_s = keep_alive_s
        self.head: Cursor | None = None
        self._streams: set[Subscriber] = set()  # every open stream, catching up or attached
        self._everyone: set[Subscriber] = set()
        self._by_user: dict[str, set[Subscriber]] = {}
        self._by_event: dict[uuid.UUID, set[Subscriber]] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._ended = asyncio.Event()  # set whenever a stream ends
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        # The feed's reads never queue behind catch-ups, which use the shared thread pool.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="bet-feed")

    async def open(self) -> Cursor:
        """Start reading the log (once); raises the database's error if it cannot."""
        async with self._lock:
            if self.head is None:
                self.head = await run_in_threadpool(_in_session, read_head)
                self._tasks = [
                    asyncio.create_task(self._run(), name="bet-feed"),
                    asyncio.create_task(self._tend(), name="bet-feed-keep-alive"),
                ]
            return self.head

    async def drain(self) -> None:
        """Shutdown begins: end every stream with a farewell, and give them a moment to go."""
        self._stopping = True
        for subscriber in self._streams:
            subscriber.close(CLOSING)
        with suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_GRACE_S):
                while self._streams:
                    self._ended.clear()
                    await self._ended.wait()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        for subscriber in self._streams:
            subscriber.close(CLOSING)
        self._executor.shutdown(wait=False)

    async def subscribe(self, interest: Interest, after: Cursor | None) -> Subscriber:
        """A new subscriber, after `after` or (without one) past what is readable now: the
        feed itself may not have read a change that committed before this request came."""
        await self.open()
        start = after if after is not None else await run_in_threadpool(_in_session, read_head)
        subscriber = Subscriber(interest, start, self._queue_size)
        if self._stopping:
            subscriber.close(CLOSING)
        self._streams.add(subscriber)
        return subscriber

    async def events(self, subscriber: Subscriber) -> AsyncGenerator[bytes]:
        """A subscriber's events: what it missed, then the live ones, a batch per send.

        While a batch is being sent the generator is suspended at its `yield`: that is how
        long the send takes, watched by `_tend`.
        """
        subscriber.task = asyncio.current_task()
        interest, cursor = subscriber.interest, subscriber.after
        loop = asyncio.get_running_loop()
        try:
            while subscriber.farewell is None:
                target = self.head
                assert target is not None, "opened by subscribe"
                if cursor >= target:
                    async with self._lock:
                        if cursor >= target == self.head and subscriber.farewell is None:
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
                missed = [
                    encode(change)
                    for change in page.changes
                    if interest.matches(change.user_id, change.event_id)
                ]
                if missed:
                    yield b"".join(missed)
                cursor = page.scanned_to
            else:
                yield subscriber.farewell
                return
            yield LIVE
            async for batch in subscriber.batches():
                subscriber.sending_since = loop.time()
                yield batch
                subscriber.sending_since = None
        finally:
            self._detach(subscriber)
            self._streams.discard(subscriber)
            self._ended.set()

    async def _tend(self) -> None:
        """Every keep-alive period: a comment to each idle subscriber, and the end of any
        response whose send has not finished in `SEND_TIMEOUT_S` (its client is gone)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._keep_alive_s)
            now = loop.time()
            for subscriber in list(self._streams):
                since = subscriber.sending_since
                if since is not None and now - since > SEND_TIMEOUT_S:
                    log.info("bet stream: a send took over %.0f s; ending it", SEND_TIMEOUT_S)
                    if subscriber.task is not None:
                        subscriber.task.cancel()
                else:
                    subscriber.keep_alive()

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
        """Each change encoded once, handed to every subscriber it matches: to those who see
        every bet all at once, to the others change by change through the indexes."""
        dropped: list[Subscriber] = []
        chunks: list[bytes | None] = [None] * len(changes)
        if self._everyone:
            encoded = [encode(change) for change in changes]
            entries = [(c.cursor, chunk) for c, chunk in zip(changes, encoded, strict=True)]
            dropped += [s for s in self._everyone if not s.offer_all(entries)]
            chunks = list(encoded)
        for change, chunk in zip(changes, chunks, strict=True):
            for subscriber in (
                *self._by_user.get(change.user_id, ()),
                *self._by_event.get(change.event_id, ()),
            ):
                if not subscriber.interest.matches(change.user_id, change.event_id):
                    continue
                chunk = chunk or encode(change)
                if not subscriber.offer(change.cursor, chunk):
                    dropped.append(subscriber)
        for subscriber in dropped:
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
