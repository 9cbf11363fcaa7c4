"""The line provider (`betting line-provider`): the events API, and the process's one Kafka
producer, opened by the lifespan and flushed at shutdown. Ready when Postgres and the broker
answer: it cannot take an event write without the broker."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from betting import topics
from betting.kafka import client_config
from betting.settings import get_settings
from gateway.app import create_app, problem, serve
from gateway.producer import BrokerUnavailable, EventPublisher, broker_reachable
from gateway.routers import book, events
from gateway.routers.ops import database_reachable

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    try:
        await run_in_threadpool(topics.check_topics, client_config(settings), [topics.EVENTS])
    except topics.TopicsNotReady as error:
        log.error("the line provider cannot start: %s", error)
        raise
    app.state.publisher = EventPublisher(client_config(settings), settings.publish_timeout_s)
    try:
        yield
    finally:
        await run_in_threadpool(app.state.publisher.close)


async def _broker_unavailable(_: Request, exc: BrokerUnavailable) -> JSONResponse:
    log.warning("broker unavailable: %s", exc)
    return problem(status.HTTP_503_SERVICE_UNAVAILABLE, "the broker is unavailable")


app = create_app(
    title="Line provider",
    summary="Operators publish events and drive them through a match; anyone reads them.",
    routers=[events.router, book.router],
    readiness={"database": database_reachable, "broker": broker_reachable},
    lifespan=lifespan,
    exception_handlers={BrokerUnavailable: _broker_unavailable},
)


def main() -> None:
    """Serve the events API (`betting line-provider`)."""
    serve(app, get_settings().line_provider_port)
