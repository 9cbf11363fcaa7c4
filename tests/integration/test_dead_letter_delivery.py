"""The event writer delivers dead letters after its transaction, and never loses one.

Under test: the writers' sink (`betting.streams.DatabaseSink`) over the event writer's apply
step, in-process, against the session's real Postgres. Its dead letters go to the session's
real broker but a topic that does not exist, so the broker refuses them (a delivery that fails
outright), or to a broker that does not answer, so they wait until they time out.
"""

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from quixstreams.kafka import Producer
from quixstreams.sinks import SinkBackpressureError, SinkBatch
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from betting import topics
from betting.db import get_engine
from betting.messages import EventCreated, EventUpdated, encode
from betting.models import Event, EventCreate, EventUpdate
from betting.streams import DatabaseSink, DeadLetters
from functions.event_writer.apply import apply_event_messages
from launcher import local
from tests.conftest import Stack

# A partition no real record is in: this test's progress must not move the scorer's.
PARTITION = 97
# How long the broker is given to take a dead letter before the delivery fails.
DELIVERY_TIMEOUT_MS = 2000


class _App:
    """What `DeadLetters` takes from the application: a producer, here to the real broker,
    whose deliveries fail within `DELIVERY_TIMEOUT_MS`."""

    def __init__(self, brokers: str) -> None:
        self._brokers = brokers

    def get_producer(self) -> Producer:
        return Producer(
            self._brokers,
            extra_config={
                "allow.auto.create.topics": False,
                "message.timeout.ms": DELIVERY_TIMEOUT_MS,
            },
        )


def _sink(brokers: str) -> DatabaseSink:
    # Its dead-letter topic, `no-such-topic.dlq`, does not exist, and nothing creates it.
    letters = DeadLetters(_App(brokers), "no-such-topic", "test-group")  # type: ignore[arg-type]
    return DatabaseSink(apply_event_messages, letters)


def _created(event_id: uuid.UUID) -> EventCreated:
    body = {
        "type": f"football-{uuid.uuid4().hex[:8]}",
        "team_1": "Ajax",
        "team_2": "PSV",
        "event_date": datetime.now(UTC) + timedelta(hours=2),
        "odds": {"team_1": "2.10", "team_2": "3.40", "draw": "3.00"},
    }
    return EventCreated(
        event_id=event_id, sent_at=datetime.now(UTC), event=EventCreate.model_validate(body)
    )


def _refused(event_id: uuid.UUID) -> EventUpdated:
    """A change the writer refuses, after locking the event: a score sent with the move out
    of `created` (DESIGN.md rule 4), so one dead letter."""
    changes = EventUpdate.model_validate({"state": "active", "score": "2-0"})
    return EventUpdated(event_id=event_id, sent_at=datetime.now(UTC), changes=changes)


def _batch(*messages: EventCreated | EventUpdated) -> SinkBatch:
    """`messages` as a batch of the events' log, keyed by their event id."""
    batch = SinkBatch(topics.EVENTS, PARTITION)
    base = time.time_ns() // 1000  # offsets above any an earlier batch of this test used
    for offset, message in enumerate(messages, start=base):
        batch.append(encode(message), str(message.event_id).encode(), 0, [], offset)
    return batch


def test_a_dead_letter_the_broker_does_not_take_fails_the_batch_for_a_replay(
    stack: Stack,
) -> None:
    event_id = uuid.uuid4()

    with pytest.raises(SinkBackpressureError):
        _sink(stack.broker.address).write(_batch(_created(event_id), _refused(event_id)))


def test_the_events_row_is_not_locked_while_dead_letters_are_delivered(stack: Stack) -> None:
    event_id = uuid.uuid4()
    outcome: list[Any] = []
    silent_broker = f"127.0.0.1:{local.free_port()}"  # nothing listens there
    _sink(silent_broker).write(_batch(_created(event_id)))  # no dead letter: nothing waits

    def write() -> None:
        try:
            _sink(silent_broker).write(_batch(_refused(event_id)))
            outcome.append(None)
        except Exception as error:
            outcome.append(error)

    writing = threading.Thread(target=write)
    writing.start()
    # Whether the row could be locked, sampled while the writer is busy. Its transaction holds
    # the row for a moment while it applies the batch (a first sample may see that); once the
    # row was free the transaction is over, and the delivery that follows must not hold it.
    free: list[bool] = []
    deadline = time.monotonic() + DELIVERY_TIMEOUT_MS / 1000
    while writing.is_alive() and time.monotonic() < deadline:
        with Session(get_engine()) as session:
            try:
                query = select(Event).where(Event.id == event_id).with_for_update(nowait=True)
                session.exec(query).first()
                free.append(True)
            except OperationalError:
                free.append(False)
            session.rollback()
        time.sleep(0.1)
    writing.join(timeout=60)

    assert not writing.is_alive()
    assert True in free, f"the event was held FOR UPDATE during the whole delivery: {free}"
    after_free = free[free.index(True) :]
    assert all(after_free), f"the event was locked again during the delivery: {free}"
    # The undelivered dead letter failed the batch, to be read again.
    assert isinstance(outcome[0], SinkBackpressureError), outcome
