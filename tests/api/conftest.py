"""Each server in-process, alone, against the session's real Postgres and broker.

`line_provider` and `bet_maker` are the two apps; each test module names the one it tests as
`client`. Fixtures that need the other server's data write it to the database directly, as the
event writer or the bet maker would have, so no test of one server goes through the other."""

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from fastapi.testclient import TestClient
from sqlmodel import Session

from betting import topics
from betting.auth import Role, mint_token
from betting.db import get_engine
from betting.domain import NIL_NIL, Score, potential_payout
from betting.messages import EventCreated, EventUpdated, decode_event
from betting.models import Bet, Event
from betting.settings import get_settings
from gateway import bet_maker as bet_maker_app
from gateway import line_provider as line_provider_app
from tests.conftest import Stack


@pytest.fixture(scope="session")
def line_provider(stack: Stack) -> Iterator[TestClient]:
    """The line provider with its lifespan running (so its producer is open)."""
    with TestClient(line_provider_app.app) as client:
        yield client


@pytest.fixture(scope="session")
def bet_maker(stack: Stack) -> Iterator[TestClient]:
    """The bet maker with its lifespan running."""
    with TestClient(bet_maker_app.app) as client:
        yield client


@dataclass(frozen=True)
class Caller:
    id: str
    headers: dict[str, str]


# What the fixtures below hand a test: make an event, place a bet, change an event.
MakeEvent = Callable[..., Event]
MakeBet = Callable[..., dict[str, Any]]
EditEvent = Callable[..., None]


class MakeCaller(Protocol):
    def __call__(self, role: Role = ..., user: str | None = None) -> Caller: ...


@pytest.fixture
def make_caller(stack: Stack) -> MakeCaller:
    """`make_caller(role, user)`: someone with a valid token; a new user unless named."""

    def factory(role: Role = Role.PLAYER, user: str | None = None) -> Caller:
        user_id = user or f"{role}-{uuid.uuid4().hex[:8]}"
        return Caller(user_id, {"Authorization": f"Bearer {mint_token(user_id, role)}"})

    return factory


@pytest.fixture
def operator(make_caller: MakeCaller) -> Caller:
    return make_caller(Role.OPERATOR)


@pytest.fixture
def player(make_caller: MakeCaller) -> Caller:
    return make_caller(Role.PLAYER)


def soon(**delta: float) -> datetime:
    """A whole-second UTC moment relative to now (a day ahead by default)."""
    offset = timedelta(**delta) if delta else timedelta(days=1)
    return (datetime.now(UTC) + offset).replace(microsecond=0)


@pytest.fixture
def make_event(stack: Stack) -> Callable[..., Event]:
    """`make_event(**overrides)`: an event row, as the event writer would have stored it."""

    def factory(**overrides: Any) -> Event:
        event_date = overrides.pop("event_date", soon())
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "type": f"football-{uuid.uuid4().hex[:8]}",
            "team_1": "Ajax",
            "team_2": "PSV",
            "event_date": event_date,
            "deadline": event_date,
            "odds_team_1": Decimal("1.85"),
            "odds_team_2": Decimal("2.10"),
            "odds_draw": Decimal("3.40"),
            "state": "created",
            "score": NIL_NIL,
            "version": 0,
            "score_version": 0,
            "created_at": now,
            "updated_at": now,
        }
        if isinstance(overrides.get("score"), str):
            overrides["score"] = Score.parse(overrides["score"])  # a test's shorthand: "1-0"
        event = Event(**{**values, **overrides})
        with Session(get_engine(), expire_on_commit=False) as session:
            session.add(event)
            session.commit()
        return event

    return factory


@pytest.fixture
def edit_event(stack: Stack) -> Callable[..., None]:
    """`edit_event(event_id, **values)`: change a stored event, as the event writer would."""

    def edit(event_id: uuid.UUID, **values: Any) -> None:
        with Session(get_engine()) as session:
            event = session.get(Event, event_id)
            assert event is not None
            for name, value in values.items():
                setattr(event, name, value)
            session.add(event)
            session.commit()

    return edit


@pytest.fixture
def make_bet(
    bet_maker: TestClient, make_event: Callable[..., Event], player: Caller
) -> Callable[..., dict[str, Any]]:
    """`make_bet(caller=None, **body)`: a bet placed through the bet maker; asserts it was
    created."""

    def factory(caller: Caller | None = None, **body: Any) -> dict[str, Any]:
        if "event_id" not in body:
            body["event_id"] = str(make_event().id)
        body = {"market": "team_1", "amount": "10.00", **body}
        response = bet_maker.post("/bets", json=body, headers=(caller or player).headers)
        assert response.status_code == 201, response.text
        bet: dict[str, Any] = response.json()
        return bet

    return factory


@pytest.fixture
def store_bet(stack: Stack) -> Callable[..., Bet]:
    """`store_bet(event)`: a bet row on the event, as the bet maker would have stored it."""

    def factory(event: Event, amount: Decimal = Decimal("10.00")) -> Bet:
        now = datetime.now(UTC)
        bet = Bet(
            user_id=f"player-{uuid.uuid4().hex[:8]}",
            event_id=event.id,
            market="team_1",
            amount=amount,
            odds=event.odds_team_1,
            potential_payout=potential_payout(amount, event.odds_team_1),
            date_created=now,
            updated_at=now,
        )
        with Session(get_engine(), expire_on_commit=False) as session:
            session.add(bet)
            session.commit()
        return bet

    return factory


Received = tuple[str, EventCreated | EventUpdated, bytes]


@pytest.fixture
def read_events_topic(stack: Stack) -> Callable[..., list[Received]]:
    """`read_events_topic(event_id, count)`: the messages keyed by the event, from the start."""

    def read(event_id: uuid.UUID, count: int = 1, timeout_s: float = 10.0) -> list[Received]:
        consumer = Consumer(
            {
                "bootstrap.servers": get_settings().kafka_brokers,
                "group.id": f"api-test-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        try:
            partitions = consumer.list_topics(topics.EVENTS, timeout=5).topics[topics.EVENTS]
            consumer.assign(
                [TopicPartition(topics.EVENTS, p, OFFSET_BEGINNING) for p in partitions.partitions]
            )
            found: list[Received] = []
            deadline = time.monotonic() + timeout_s
            while len(found) < count and time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is None or message.error() is not None:
                    continue
                key = message.key().decode()
                if key == str(event_id):
                    found.append((key, decode_event(message.value()), message.value()))
            return found
        finally:
            consumer.close()

    return read
