"""The bet maker needs no broker: a real `betting bet-maker` process starts and is ready with no
broker reachable and never loads a Kafka library, and keeps placing bets while the broker is
down, where the line provider stops being ready. (That it imports no Kafka module at all is
tests/unit/test_layers.py.)"""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from betting.auth import Role
from betting.db import get_engine
from betting.domain import NIL_NIL
from betting.models import Event
from launcher import local
from tests.conftest import Stack
from tests.integration.conftest import bearer, server_process, wait_for

pytestmark = pytest.mark.e2e


def mapped_files(pid: int) -> str:
    """The files a running process has mapped: every shared library it loaded."""
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.fixture
def open_event(stack: Stack) -> Callable[[], Event]:
    """An event open for bets, stored as the event writer would (no line provider needed)."""

    def make() -> Event:
        now = datetime.now(UTC)
        kickoff = now + timedelta(hours=2)
        event = Event(
            id=uuid.uuid4(), type="football", team_1="Ajax", team_2="PSV",
            event_date=kickoff, deadline=kickoff, odds_team_1=Decimal("2.00"),
            odds_team_2=Decimal("3.00"), odds_draw=Decimal("3.50"), state="created",
            score=NIL_NIL, version=0, score_version=0, created_at=now, updated_at=now,
        )  # fmt: skip
        with Session(get_engine(), expire_on_commit=False) as session:
            session.add(event)
            session.commit()
        return event

    return make


def place_bets(url: str, event: Event, count: int) -> list[int]:
    player = bearer(Role.PLAYER, f"player-{uuid.uuid4().hex[:8]}")
    body = {"event_id": str(event.id), "market": "draw", "amount": "2.50"}
    return [httpx.post(f"{url}/bets", headers=player, json=body).status_code for _ in range(count)]


def ready(url: str) -> tuple[int, object]:
    response = httpx.get(f"{url}/readyz", timeout=10)
    return response.status_code, response.json()


def test_the_bet_maker_starts_ready_and_takes_bets_with_no_broker_reachable(
    stack: Stack, open_event: Callable[[], Event]
) -> None:
    nowhere = f"127.0.0.1:{local.free_port()}"
    with server_process(stack, "bet-maker", BETTING_KAFKA_BROKERS=nowhere) as (server, url):
        assert ready(url) == (200, {"status": "ok"})
        assert place_bets(url, open_event(), 5) == [201] * 5
        libraries = mapped_files(server.pid)
        metrics = httpx.get(f"{url}/metrics").text

    assert "confluent_kafka" not in libraries and "librdkafka" not in libraries
    assert "gateway_bets_placed_total 5.0" in metrics
    assert "gateway_events_published_total" not in metrics


def test_the_bet_maker_keeps_placing_bets_while_the_broker_is_down(
    stack: Stack, own_broker: local.Broker, open_event: Callable[[], Event]
) -> None:
    brokers = {"BETTING_KAFKA_BROKERS": own_broker.address}
    with (
        server_process(stack, "bet-maker", **brokers) as (bet_maker, bets_url),
        server_process(stack, "line-provider", **brokers) as (line_provider, events_url),
    ):
        event = open_event()
        assert place_bets(bets_url, event, 3) == [201] * 3
        # The library check of the test above would see a Kafka client: here is one.
        assert "confluent_kafka" in mapped_files(line_provider.pid)
        assert "confluent_kafka" not in mapped_files(bet_maker.pid)

        own_broker.stop()

        # The line provider notices (it cannot publish without the broker)...
        wait_for(lambda: ready(events_url)[0] == 503, 30, "the line provider to be unready")
        assert ready(events_url) == (503, {"detail": "unavailable: broker"})
        # ...the bet maker does not, and bets go on being placed.
        assert ready(bets_url) == (200, {"status": "ok"})
        assert place_bets(bets_url, event, 5) == [201] * 5
        assert bet_maker.running()
