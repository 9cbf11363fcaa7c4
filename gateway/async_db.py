"""A few psycopg2 connections in asynchronous mode, driven by the event loop: bet placement's
one statement runs here without a worker thread.

Why: under load, placing a bet through the threadpool spent most of the machine's CPU in system
time, threads handing the GIL to each other around a query that takes a fraction of a
millisecond. psycopg2's asynchronous mode sends the query and lets the event loop wait on the
socket, as any other I/O. Such a connection is always in autocommit (psycopg2's rule), which
suits a statement that is its own transaction. Anything that needs a transaction of several
statements stays on the SQLAlchemy pool (`gateway.deps.Database`).

There is no liveness ping before a query (it would cost a round trip per query): a connection
that fails is closed, never reused, and the error answers 503 (`gateway.app`); the next query
opens a fresh one.
"""

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from sqlalchemy import Engine

CONNECT_TIMEOUT_S = 5.0

# Error classes a failed asynchronous query or connection raises, which answer 503.
UNAVAILABLE: tuple[type[Exception], ...] = (psycopg2.OperationalError, psycopg2.InterfaceError)


async def _ready(connection: Any) -> None:
    """Until `connection`'s pending work (connecting, or a query) is done."""
    loop = asyncio.get_running_loop()
    fd = connection.fileno()
    while True:
        state = connection.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        waiting = loop.create_future()

        def wake(waiting: asyncio.Future[None] = waiting) -> None:
            if not waiting.done():
                waiting.set_result(None)

        if state == psycopg2.extensions.POLL_READ:
            loop.add_reader(fd, wake)
            try:
                await waiting
            finally:
                loop.remove_reader(fd)
        else:  # POLL_WRITE
            loop.add_writer(fd, wake)
            try:
                await waiting
            finally:
                loop.remove_writer(fd)


class AsyncPostgres:
    """Up to `size` asynchronous connections to `dsn`, opened when first needed."""

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn = dsn
        self._size = size
        self._idle: list[Any] = []
        # A semaphore belongs to the loop it first waits in; a test may run several loops.
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self._size))
        return self._slots[1]

    async def _connect(self) -> Any:
        connection = psycopg2.connect(self._dsn, async_=True)
        try:
            await asyncio.wait_for(_ready(connection), CONNECT_TIMEOUT_S)
        except TimeoutError:
            connection.close()
            raise psycopg2.OperationalError("timed out connecting to the database") from None
        except BaseException:
            connection.close()
            raise
        psycopg2.extras.register_uuid(conn_or_curs=connection)  # type: ignore[no-untyped-call]
        return connection

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        async with self._semaphore():
            connection = self._idle.pop() if self._idle else await self._connect()
            try:
                yield connection
            except BaseException:
                # Cancelled mid-query, or failed: its state is unknown, so it is not reused.
                connection.close()
                raise
            if connection.closed:
                return
            self._idle.append(connection)

    async def fetchone(self, sql: str, parameters: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row `sql` returns (pyformat parameters), in a transaction of its own."""
        async with self._connection() as connection:
            cursor = connection.cursor()
            cursor.execute(sql, parameters)
            await _ready(connection)
            row: tuple[Any, ...] | None = cursor.fetchone()
            cursor.close()
            return row

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


@lru_cache(maxsize=8)
def async_postgres(engine: Engine) -> AsyncPostgres:
    """The asynchronous connections to `engine`'s database, as many as its pool holds."""
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return AsyncPostgres(dsn, engine.pool.size())  # type: ignore[attr-defined]
