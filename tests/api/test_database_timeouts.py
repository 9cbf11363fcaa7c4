"""A row held by another transaction bounds a request's wait: `lock_timeout` answers 503.

Without a bound, a request waits for the lock as long as the holder keeps it (a stuck event
writer, an operator's open psql session): its connection and worker are gone meanwhile, and
enough of them starve every other request.
"""

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from quixstreams.sinks import SinkBackpressureError
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from betting.db import get_engine, session_scope
from betting.models import Event
from betting.settings import get_settings
from betting.streams import retry_on_database_error
from tests.api.conftest import Caller

# The holder lets go this long after taking the lock; a request that waits for it rather
# than giving up at the lock timeout answers only then.
HOLD_S = 12.0
# What a 503 may take beyond the lock timeout: the request's own work, on a loaded machine.
MARGIN_S = 3.0


@pytest.fixture
def client(bet_maker: TestClient) -> TestClient:
    return bet_maker


@contextmanager
def event_locked(event_id: uuid.UUID) -> Iterator[None]:
    """The event's row held FOR UPDATE by another transaction, for at most `HOLD_S`."""
    session = Session(get_engine())
    session.exec(select(Event).where(Event.id == event_id).with_for_update()).one()
    release = threading.Timer(HOLD_S, session.rollback)
    release.start()
    try:
        yield
    finally:
        release.cancel()
        session.rollback()
        session.close()


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def test_a_placement_on_a_locked_event_answers_503_at_the_lock_timeout(
    client: TestClient, player: Caller, make_event: Callable[..., Event]
) -> None:
    event = make_event()
    body = {"event_id": str(event.id), "market": "draw", "amount": "1"}

    with event_locked(event.id):
        answer, took = timed(lambda: client.post("/bets", json=body, headers=player.headers))

    assert answer.status_code == 503, answer.text
    assert took < get_settings().db_lock_timeout_ms / 1000 + MARGIN_S


def test_a_bet_change_on_a_locked_event_answers_503_at_the_lock_timeout(
    client: TestClient, player: Caller, make_bet: Callable[..., dict[str, Any]]
) -> None:
    bet = make_bet()

    with event_locked(uuid.UUID(bet["event_id"])):
        answer, took = timed(
            lambda: client.patch(f"/bets/{bet['id']}", json={"amount": "2"}, headers=player.headers)
        )

    assert answer.status_code == 503, answer.text
    assert took < get_settings().db_lock_timeout_ms / 1000 + MARGIN_S


def test_a_function_meeting_a_lock_timeout_retries_its_batch(
    make_event: Callable[..., Event],
) -> None:
    event = make_event()

    with event_locked(event.id), pytest.raises(SinkBackpressureError):
        try:
            with retry_on_database_error(), session_scope() as session:
                statement = select(Event).where(Event.id == event.id).with_for_update()
                session.exec(statement).one()
        except SQLAlchemyError as error:
            pytest.fail(f"a lock timeout must be retried, not fatal: {error!r}")
