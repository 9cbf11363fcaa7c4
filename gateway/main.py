"""The gateway: one FastAPI app with the events, bets and operations routers.

`betting gateway` serves it with uvicorn; the lifespan opens the process's one Kafka producer
and flushes it at shutdown.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool

from betting.domain import IllegalTransition, InvalidEvent, ScoreNotAllowed
from betting.settings import get_settings
from gateway import edge
from gateway.crud import Conflict, NotFound, Unprocessable
from gateway.metrics import MetricsMiddleware
from gateway.producer import BrokerUnavailable, EventPublisher
from gateway.routers import bets, events, ops

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    settings.check_safe()  # however the app is served: never with a secret anyone knows
    app.state.publisher = EventPublisher(settings.kafka_brokers, settings.gateway_publish_timeout_s)
    try:
        yield
    finally:
        await run_in_threadpool(app.state.publisher.close)


app = FastAPI(
    title="Betting platform",
    summary="Line provider (events) and bet maker (bets) APIs.",
    version="0.1.0",
    lifespan=lifespan,
)
app.add_middleware(MetricsMiddleware)
edge.install(app)
app.include_router(events.router)
app.include_router(bets.router)
app.include_router(ops.router)


def _detail(code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code)


@app.exception_handler(NotFound)
async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
    return _detail(status.HTTP_404_NOT_FOUND, str(exc))


@app.exception_handler(Conflict)
@app.exception_handler(IllegalTransition)
@app.exception_handler(ScoreNotAllowed)
async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    return _detail(status.HTTP_409_CONFLICT, str(exc))


@app.exception_handler(InvalidEvent)
@app.exception_handler(Unprocessable)
async def _unprocessable(_: Request, exc: Exception) -> JSONResponse:
    # Shaped like FastAPI's own validation errors, so every 422 reads the same.
    loc = exc.loc if isinstance(exc, Unprocessable) else ("body",)
    error = {"type": "value_error", "loc": list(loc), "msg": str(exc), "input": None}
    return JSONResponse({"detail": [error]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


@app.exception_handler(OperationalError)
@app.exception_handler(PoolTimeout)
async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return _detail(status.HTTP_503_SERVICE_UNAVAILABLE, "the database is unavailable")


@app.exception_handler(BrokerUnavailable)
async def _broker_unavailable(_: Request, exc: BrokerUnavailable) -> JSONResponse:
    log.warning("broker unavailable: %s", exc)
    return _detail(status.HTTP_503_SERVICE_UNAVAILABLE, "the broker is unavailable")


def main() -> None:
    """Serve the API (`betting gateway`)."""
    settings = get_settings()
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
    )
