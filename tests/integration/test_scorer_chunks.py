"""A long settlement keeps the scorer alive: it sends its records chunk by chunk, each
delivered before the next is read, and touches its heartbeat after each.

A step that scores millions of bets outlasts the liveness probe's heartbeat age (librdkafka
serves the statistics that touch it only while the loop polls, which it does not do inside a
step); without a tick per chunk the probe restarts the scorer, which replays the change and
may never finish. Against the session's real broker, on a topic of this test's own.
"""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from betting.liveness import heartbeat_age_s
from betting.settings import get_settings
from functions.bet_scorer.publish import Publisher
from functions.bet_scorer.score import ScoredBet
from tests.conftest import Stack

CHUNK = 50
CHUNKS = 4
# How long reading each chunk's bets takes here: longer than the heartbeat may age.
CHUNK_S = 1.0


def _topic(stack: Stack) -> str:
    name = f"scorer-chunks-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": stack.broker.address})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=30)
    return name


@pytest.fixture
def heartbeat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The scorer's settings: a heartbeat file and a chunk of `CHUNK` records."""
    path = tmp_path / "heartbeat"
    monkeypatch.setenv("BETTING_HEARTBEAT_FILE", str(path))
    monkeypatch.setenv("BETTING_SCORER_CHUNK_SIZE", str(CHUNK))
    get_settings.cache_clear()
    yield path
    monkeypatch.undo()
    get_settings.cache_clear()


def test_each_chunk_of_a_settlement_is_delivered_and_touches_the_heartbeat(
    stack: Stack, heartbeat: Path
) -> None:
    publisher = Publisher(_topic(stack))
    ages: list[float] = []

    def slow_bets() -> Iterator[ScoredBet]:
        for chunk in range(CHUNKS):
            time.sleep(CHUNK_S)
            if chunk > 0:
                ages.append(heartbeat_age_s(str(heartbeat)))
            for n in range(CHUNK):
                yield ScoredBet(f"bet-{chunk}-{n}", b"{}")

    try:
        assert publisher.send_all(slow_bets()) == CHUNK * CHUNKS
    finally:
        publisher.close()

    # Each chunk touched it: never older than one chunk's reading (plus a loaded machine's
    # delay), though the whole step took CHUNKS times that.
    assert len(ages) == CHUNKS - 1
    assert max(ages) < CHUNK_S + 1.0, ages
