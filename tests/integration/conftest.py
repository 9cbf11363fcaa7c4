"""The three functions running as real processes against the session's servers."""

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session, col, select

from betting import topics
from betting.auth import Role, mint_token
from betting.db import get_engine
from betting.domain import BetState, Market, potential_payout, settled_payout
from betting.messages import EventCreated, EventUpdated, encode
from betting.models import Bet, Event, EventCreate, EventUpdate
from launcher import local
from launcher.local.front import running_front
from tests.apps import APPS
from tests.conftest import Stack

T = TypeVar("T")
FUNCTIONS = ("event-writer", "bet-scorer", "bet-writer")


def wait_for(check: Callable[[], T | None], timeout_s: float = 30.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what or check}")
        time.sleep(0.1)


class Functions:
    """Started function processes, stopped at teardown."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self.running: list[local.Component] = []

    def start(self, command: str, **env: str) -> local.Component:
        name = f"{command}-{uuid.uuid4().hex[:6]}"
        component = local.Component(
            command,
            env={**self._stack.env, **env},
            log_path=self._stack.workdir / f"{name}.log",
        ).start()
        self.running.append(component)
        return component

    def start_all(self, **env: str) -> list[local.Component]:
        return [self.start(command, **env) for command in FUNCTIONS]

    def stop_all(self) -> None:
        for component in self.running:
            component.stop()
        self.running.clear()


@pytest.fixture(scope="session")
def functions(stack: Stack) -> Iterator[Functions]:
    """One replica of each function in its default group, for the whole session."""
    running = Functions(stack)
    running.start_all()
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def extra_functions(stack: Stack) -> Iterator[Functions]:
    """More function processes for one test."""
    running = Functions(stack)
    try:
        yield running
    finally:
        running.stop_all()


class Log:
    """Writes to the topics as the line provider would."""

    def __init__(self, brokers: str) -> None:
        self._producer = Producer({"bootstrap.servers": brokers, "acks": "all"})

    def send(self, topic: str, key: str | bytes | None, value: bytes | None) -> tuple[int, int]:
        """Produce and wait for the ack; return where the message landed (partition, offset)."""
        landed: list[tuple[int, int]] = []

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            assert error is None, error
            landed.append((message.partition(), message.offset()))

        self._producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        assert self._producer.flush(10) == 0
        return landed[0]

    def create_event(self, **overrides: Any) -> uuid.UUID:
        event_id = overrides.pop("event_id", None) or uuid.uuid4()
        kickoff = datetime.now(UTC) + timedelta(hours=2)
        body = {
            "type": f"football-{uuid.uuid4().hex[:8]}",
            "team_1": "Ajax",
            "team_2": "PSV",
            "event_date": kickoff,
            "odds": {"team_1": "2.10", "team_2": "3.40", "draw": "3.00"},
            **overrides,
        }
        message = EventCreated(
            event_id=event_id, sent_at=datetime.now(UTC), event=EventCreate.model_validate(body)
        )
        self.send(topics.EVENTS, str(event_id), encode(message))
        return event_id

    def update_event(self, event_id: uuid.UUID, **changes: Any) -> int:
        """Publish a change; return its offset (the version it gives the event)."""
        message = EventUpdated(
            event_id=event_id,
            sent_at=datetime.now(UTC),
            changes=EventUpdate.model_validate(changes),
        )
        _, offset = self.send(topics.EVENTS, str(event_id), encode(message))
        return offset


@pytest.fixture
def empty_database(stack: Stack) -> Iterator[str]:
    """The URL of a database of its own, with no schema yet."""
    name = f"test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(stack.postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = stack.postgres.url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(scope="session")
def log(stack: Stack) -> Log:
    return Log(stack.broker.address)


def read_event(event_id: uuid.UUID, engine: Engine | None = None) -> Event | None:
    with Session(engine or get_engine()) as session:
        return session.get(Event, event_id)


def wait_for_event(
    event_id: uuid.UUID, timeout_s: float = 30.0, engine: Engine | None = None, **expected: Any
) -> Event:
    def check() -> Event | None:
        event = read_event(event_id, engine)
        if event is None or any(getattr(event, k) != v for k, v in expected.items()):
            return None
        return event

    return wait_for(check, timeout_s, f"event {event_id} with {expected}")


def bet_states(event_id: uuid.UUID, engine: Engine | None = None) -> dict[uuid.UUID, str]:
    with Session(engine or get_engine()) as session:
        return {
            bet.id: bet.state
            for bet in session.exec(select(Bet).where(col(Bet.event_id) == event_id))
        }


def payouts(event_id: uuid.UUID, engine: Engine | None = None) -> dict[uuid.UUID, Decimal | None]:
    with Session(engine or get_engine()) as session:
        query = select(Bet.id, col(Bet.payout)).where(col(Bet.event_id) == event_id)
        return {bet_id: payout for bet_id, payout in session.exec(query)}


@pytest.fixture
def place_bet() -> Callable[..., Bet]:
    """Insert a bet directly, as the bet maker does after its checks (10.00 at 2.00 unless
    told); `state=` for one already scored, with the payout that state gives."""

    def factory(
        event_id: uuid.UUID, market: Market, engine: Engine | None = None, **overrides: Any
    ) -> Bet:
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "user_id": "player-1",
            "amount": Decimal("10.00"),
            "odds": Decimal("2.00"),
        }
        values.update(overrides)
        state = BetState(values.pop("state", BetState.NONE))
        potential = potential_payout(values["amount"], values["odds"])
        bet = Bet(
            event_id=event_id,
            market=market.value,
            potential_payout=potential,
            state=state.value,
            payout=settled_payout(state, values["amount"], potential),
            date_created=now,
            updated_at=now,
            **values,
        )
        with Session(engine or get_engine(), expire_on_commit=False) as session:
            session.add(bet)
            session.commit()
        return bet

    return factory


def read_topic(brokers: str, topic: str, timeout_s: float = 10.0) -> list[Any]:
    """Every message on `topic` so far, from a fresh group."""
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"test-reader-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 2000,
            "heartbeat.interval.ms": 500,
        }
    )
    consumer.subscribe([topic])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout_s
    idle_since: float | None = None
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                if messages or idle_since is not None:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > 2:
                        break
                continue
            if message.error():
                continue
            idle_since = None
            messages.append(message)
    finally:
        consumer.close()
    return messages


def dead_letters(brokers: str, topic: str) -> dict[str, list[str]]:
    """The reasons `topic`'s messages were dead-lettered so far, by message key, in order."""
    letters: dict[str, list[str]] = {}
    for message in read_topic(brokers, topics.dlq(topic)):
        reason = dict(message.headers())["reason"].decode()
        letters.setdefault(message.key().decode(), []).append(reason)
    return letters


def committed_offset(brokers: str, group: str, topic: str, partition: int) -> int:
    """The next offset `group` will read from the partition (negative if it has committed none)."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group})
    try:
        [position] = consumer.committed([TopicPartition(topic, partition)], timeout=10)
        offset: int = position.offset
        return offset
    finally:
        consumer.close()


def wait_until_consumed(
    brokers: str, group: str, topic: str, partition: int, offset: int, timeout_s: float = 30.0
) -> None:
    """Wait until `group` has committed past `offset`: that message is processed and written."""
    wait_for(
        lambda: committed_offset(brokers, group, topic, partition) > offset,
        timeout_s,
        f"{group} to consume {topic}[{partition}]@{offset}",
    )


def group_caught_up(brokers: str, group: str, topic: str) -> bool:
    """Whether `group` has committed everything currently in `topic`."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group})
    try:
        partitions = [TopicPartition(topic, p) for p in range(topics.PARTITIONS)]
        committed = consumer.committed(partitions, timeout=10)
        for position in committed:
            _, high = consumer.get_watermark_offsets(position, timeout=10)
            if high > 0 and position.offset < high:
                return False
        return True
    finally:
        consumer.close()


def wait_until_idle(brokers: str, suffix: str = "", timeout_s: float = 60.0) -> None:
    """Wait until every function group has consumed everything upstream of it."""
    chain = [
        (topics.GROUPS.event_writer, topics.EVENTS),
        (topics.GROUPS.bet_scorer, topics.EVENTS),
        (topics.GROUPS.bet_writer, topics.BETS),
    ]

    def idle() -> bool:
        return all(group_caught_up(brokers, group + suffix, topic) for group, topic in chain)

    # Twice in a row: the scorer may have produced more for the writer in between.
    wait_for(lambda: idle() and idle(), timeout_s, f"groups{suffix} to catch up")


def snapshot(engine: Engine | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the functions write, in a stable order."""
    with (engine or get_engine()).connect() as connection:
        return {
            table: [tuple(row) for row in connection.execute(text(query))]
            for table, query in {
                "events": "SELECT * FROM events ORDER BY id",
                "bets": "SELECT * FROM bets ORDER BY id",
                "log_progress": "SELECT * FROM log_progress ORDER BY topic, partition",
            }.items()
        }


@contextmanager
def server_process(stack: Stack, command: str, **env: str) -> Iterator[tuple[local.Component, str]]:
    """`betting <command>` (a server) as its own process on a free port, as it runs in
    production: the process and its URL once it is ready; stopped at the end."""
    port = local.free_port()
    setting = f"BETTING_{command.upper().replace('-', '_')}_PORT"
    log = stack.workdir / f"{command}-{port}.log"
    server = local.Component(command, env={**stack.env, setting: str(port), **env}, log_path=log)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert server.running(), log.read_text()
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        server.start()
        wait_for(ready, 60, f"the {command}")
        yield server, url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def line_provider_url(stack: Stack) -> Iterator[str]:
    """The line provider as its own process."""
    with server_process(stack, "line-provider") as (_, url):
        yield url


@pytest.fixture(scope="session")
def bet_maker_url(stack: Stack) -> Iterator[str]:
    """The bet maker as its own process."""
    with server_process(stack, "bet-maker") as (_, url):
        yield url


@pytest.fixture(scope="session")
def front_url(line_provider_url: str, bet_maker_url: str) -> Iterator[str]:
    """`make run`'s dev front before the two servers: the whole API at one address."""
    with running_front(local.free_port(), line_provider_url, bet_maker_url) as url:
        yield url


@pytest.fixture
def own_broker() -> Iterator[local.Broker]:
    """A broker of a test's own, with the topics, so stopping it disturbs no other test."""
    broker = local.Broker(local.free_port()).start()
    try:
        topics.ensure_topics({"bootstrap.servers": broker.address})
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def app_broker(stack: Stack) -> Iterator[str]:
    """A broker of their own for the servers of `app_url`, with the topics and no consumer:
    what they publish reaches no function, so whether an earlier test started the functions
    cannot change what they answer (a created event is never applied, its id stays 404)."""
    broker = local.Broker(local.free_port()).start()
    try:
        topics.ensure_topics({"bootstrap.servers": broker.address})
        yield broker.address
    finally:
        broker.stop()


@pytest.fixture(scope="session", params=list(APPS))
def app_url(request: pytest.FixtureRequest, stack: Stack, app_broker: str) -> Iterator[str]:
    """Each HTTP server (tests/apps.py) as its own process, one after the other."""
    with server_process(stack, request.param, BETTING_KAFKA_BROKERS=app_broker) as (_, url):
        yield url


def bearer(role: Role, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(user, role)}"}


def event_over_http(url: str, event_id: str, **expected: Any) -> dict[str, Any]:
    """Wait until `GET /events/{id}` shows the event with the `expected` fields."""

    def check() -> dict[str, Any] | None:
        response = httpx.get(f"{url}/events/{event_id}")
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if all(body[k] == v for k, v in expected.items()) else None

    return wait_for(check, 30, f"event {event_id} with {expected}")


def publish_event(url: str, operator: dict[str, str], **overrides: Any) -> str:
    """`POST /events` a match kicking off in two hours; return its id once readable."""
    kickoff = datetime.now(UTC) + timedelta(hours=2)
    body = {
        "type": f"football-{uuid.uuid4().hex[:8]}",
        "team_1": "Ajax",
        "team_2": "PSV",
        "event_date": kickoff.isoformat(),
        "odds": {"team_1": "2.00", "team_2": "3.00", "draw": "3.50"},
        **overrides,
    }
    response = httpx.post(f"{url}/events", headers=operator, json=body)
    assert response.status_code == 202, response.text
    event_id: str = response.json()["id"]
    assert response.headers["location"].endswith(f"/events/{event_id}")
    event_over_http(url, event_id, state="created")
    return event_id
