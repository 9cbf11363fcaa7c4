"""The foundation both HTTP servers stand on: `create_app` builds either one, `serve` runs it.

Every server gets the same error shapes, the metrics middleware, the operations endpoints
(`/healthz`, `/readyz` over the server's own readiness checks, `/metrics`) and the same OpenAPI
conventions; each brings its routers, its lifespan and what it must reach to be ready. Nothing
here touches Kafka: the bet maker is built from this module and has no Kafka client.
"""

import logging
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import uvicorn
from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import Lifespan

from betting.domain import IllegalTransition, InvalidEvent, ScoreNotAllowed
from betting.settings import get_settings
from gateway import edge
from gateway.async_db import UNAVAILABLE
from gateway.crud import Conflict, NotFound, Unprocessable
from gateway.metrics import MetricsMiddleware
from gateway.routers.ops import ReadinessCheck, operations_router

log = logging.getLogger(__name__)
STARTUP_FAILURE = 3  # uvicorn's exit status when it could not start

VERSION = "0.1.0"

ExceptionHandler = Callable[[Request, Any], Coroutine[Any, Any, JSONResponse]]


def problem(code: int, detail: str) -> JSONResponse:
    """An error answer in FastAPI's own shape: `{"detail": ...}`."""
    return JSONResponse({"detail": detail}, status_code=code)


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return problem(status.HTTP_404_NOT_FOUND, str(exc))


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    return problem(status.HTTP_409_CONFLICT, str(exc))


async def _unprocessable(_: Request, exc: Exception) -> JSONResponse:
    # Shaped like FastAPI's own validation errors, so every 422 reads the same.
    loc = exc.loc if isinstance(exc, Unprocessable) else ("body",)
    error = {"type": "value_error", "loc": list(loc), "msg": str(exc), "input": None}
    return JSONResponse({"detail": [error]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return problem(status.HTTP_503_SERVICE_UNAVAILABLE, "the database is unavailable")


# What the shared layers raise, answered the same way by every server.
EXCEPTION_HANDLERS: dict[type[Exception], ExceptionHandler] = {
    NotFound: _not_found,
    Conflict: _conflict,
    IllegalTransition: _conflict,
    ScoreNotAllowed: _conflict,
    InvalidEvent: _unprocessable,
    Unprocessable: _unprocessable,
    OperationalError: _database_unavailable,
    PoolTimeout: _database_unavailable,
    # The same outage met on an asynchronous connection (`gateway.async_db`).
    **dict.fromkeys(UNAVAILABLE, _database_unavailable),
}


def _prepared(lifespan: Lifespan[FastAPI] | None) -> Lifespan[FastAPI]:
    """`lifespan`, after refusing unsafe settings: however a server is started, never with an
    auth secret anyone knows (`Settings.check_safe`); and after sizing the worker threads to
    the database's connection pool."""

    @asynccontextmanager
    async def prepared(app: FastAPI) -> AsyncIterator[None]:
        settings = get_settings()
        settings.check_safe()
        # Blocking work (the database's) runs in anyio's default limiter, 40 threads. A thread
        # beyond the pool either waits for a connection or opens and closes one of the pool's
        # overflow; and every extra runnable thread costs GIL hand-offs (under load most of
        # the CPU went to system time). As many threads as pooled connections does neither.
        to_thread.current_default_thread_limiter().total_tokens = settings.database_pool_size
        if lifespan is None:
            yield
        else:
            async with lifespan(app):
                yield

    return prepared


def create_app(
    *,
    title: str,
    summary: str,
    routers: Sequence[APIRouter],
    readiness: Mapping[str, ReadinessCheck],
    lifespan: Lifespan[FastAPI] | None = None,
    exception_handlers: Mapping[type[Exception], ExceptionHandler] | None = None,
) -> FastAPI:
    """One server: its routers and the operations endpoints, ready when `readiness` all pass."""
    app = FastAPI(title=title, summary=summary, version=VERSION, lifespan=_prepared(lifespan))
    app.add_middleware(MetricsMiddleware)
    edge.install(app)
    for exc_class, handler in {**EXCEPTION_HANDLERS, **(exception_handlers or {})}.items():
        app.add_exception_handler(exc_class, handler)
    for router in routers:
        app.include_router(router)
    app.include_router(operations_router(readiness))
    return app


class _Server(uvicorn.Server):
    """uvicorn, letting the app end its long responses (`app.state.drain`, e.g. the bet
    stream's) as shutdown begins, before uvicorn waits for every response to finish."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        drain: Callable[[], Awaitable[None]] | None = getattr(self._app.state, "drain", None)
        if drain is not None:
            await drain()
        await super().shutdown(sockets)


def serve(app: FastAPI, port: int) -> None:
    """Run `app` with uvicorn on the configured host and `port` until SIGTERM or Ctrl-C."""
    settings = get_settings()
    # JSON logs: uvicorn's loggers keep no handlers of their own and reach the root logger's.
    log_config = None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=log_config,
    )
    server = _Server(config, app)
    with suppress(KeyboardInterrupt):
        server.run()
    if not server.started:  # as uvicorn.run: a server that never started is a failure
        sys.exit(STARTUP_FAILURE)
