"""Two replicas of each function in one group share the partitions and agree with one."""

import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from sqlalchemy import Engine, create_engine
from sqlmodel import Session, col, select

from betting.db import get_engine
from betting.domain import BetState, Market
from betting.models import Bet, Event
from launcher import local
from tests.conftest import Stack
from tests.integration.conftest import (
    Functions,
    Log,
    bet_states,
    wait_for,
    wait_for_event,
    wait_until_idle,
)

pytestmark = pytest.mark.e2e

MATCHES = 9
SCORES = ["1-0", "1-1", "2-1"]


@dataclass
class OtherStack:
    """A second database and broker, so two pipelines can run the same input side by side."""

    env: dict[str, str]
    engine: Engine
    log: Log
    brokers: str


@pytest.fixture(scope="module")
def other_stack(stack: Stack) -> Iterator[OtherStack]:
    name = f"replicas_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(stack.postgres.url.replace("postgresql+psycopg2", "postgresql"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    admin.close()
    url = stack.postgres.url.rsplit("/", 1)[0] + f"/{name}"
    broker = local.Broker(local.free_port()).start()
    env = {**stack.env, "BETTING_DATABASE_URL": url, "BETTING_KAFKA_BROKERS": broker.address}
    subprocess.run([str(Path(sys.executable).parent / "betting"), "setup"], env=env, check=True)
    engine = create_engine(url)
    try:
        yield OtherStack(env, engine, Log(broker.address), broker.address)
    finally:
        engine.dispose()
        broker.stop()


def play(log: Log, engine: Engine | None, place_bet: Callable[..., Bet], seed: int) -> None:
    """The same matches, with the same ids, whichever pipeline plays them."""
    for n in range(MATCHES):
        event_id = uuid.UUID(int=seed * 1000 + n)
        log.create_event(event_id=event_id, type="replicas")
        wait_for_event(event_id, engine=engine)
        for i, market in enumerate(Market):
            place_bet(
                event_id, market, engine=engine, id=uuid.UUID(int=seed * 1000_000 + n * 10 + i)
            )
    for n in range(MATCHES):
        event_id = uuid.UUID(int=seed * 1000 + n)
        log.update_event(event_id, state="active")
        for score in SCORES[: n % len(SCORES) + 1]:
            log.update_event(event_id, score=score)
        if n % 2 == 0:
            log.update_event(event_id, state="finished")


def outcome(engine: Engine | None) -> dict[str, list[tuple[Any, ...]]]:
    """What the matches left, without log positions and write times (two logs differ in those)."""
    with Session(engine or get_engine()) as session:
        events = session.exec(
            select(col(Event.id), col(Event.state), col(Event.score)).where(
                Event.type == "replicas"
            )
        ).all()
        bets = session.exec(
            select(Bet.id, Bet.market, Bet.state)
            .join(Event, col(Event.id) == Bet.event_id)
            .where(Event.type == "replicas")
        ).all()
    return {"events": sorted(tuple(e) for e in events), "bets": sorted(tuple(b) for b in bets)}


def partitions_applied(path: Path) -> set[int]:
    return {int(p) for p in re.findall(r"applied events\.taxonomy\[(\d)\]", path.read_text())}


def test_two_replicas_share_partitions_and_match_one(
    stack: Stack,
    functions: Functions,
    other_stack: OtherStack,
    extra_functions: Functions,
    log: Log,
    place_bet: Callable[..., Bet],
) -> None:
    pair = [extra_functions.start(command, **other_stack.env) for command in ("event-writer",) * 2]
    for command in ("bet-scorer", "bet-writer"):
        pair += [extra_functions.start(command, **other_stack.env) for _ in range(2)]
    seed = uuid.uuid4().int % 1000 + 1

    play(log, None, place_bet, seed)
    play(other_stack.log, other_stack.engine, place_bet, seed)
    last_event = uuid.UUID(int=seed * 1000 + MATCHES - 1)
    last_bet = uuid.UUID(int=seed * 1000_000 + (MATCHES - 1) * 10)

    def settled(engine: Engine | None) -> bool:
        return bet_states(last_event, engine).get(last_bet) == BetState.WIN.value

    wait_for(lambda: settled(None), what="the last match settled, one replica each")
    wait_for(lambda: settled(other_stack.engine), what="the last match settled, two each")
    wait_until_idle(stack.broker.address)
    wait_until_idle(other_stack.brokers)

    one, two = outcome(None), outcome(other_stack.engine)
    assert len(two["bets"]) == MATCHES * len(Market)
    assert two == one
    shares = [
        partitions_applied(c.log_path) for c in pair if c.command == "event-writer" and c.log_path
    ]
    assert len(shares) == 2 and all(shares), f"each replica applies some partitions: {shares}"
