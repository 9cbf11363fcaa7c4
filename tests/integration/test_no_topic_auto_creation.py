"""The line provider never lets the broker create the events topic: before `betting setup` has
created it (with its partitions), readiness and publishing fail instead of making a topic of
the broker's default shape that the functions would then be stuck with."""

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka.admin import AdminClient

from betting import topics
from betting.messages import EventCreated
from betting.models import EventCreate
from gateway.producer import BrokerUnavailable, EventPublisher
from launcher import local


@pytest.fixture
def empty_broker() -> Iterator[str]:
    """A broker of its own that has no topic at all (it creates one when a client asks)."""
    broker = local.Broker(local.free_port()).start()
    try:
        yield broker.address
    finally:
        broker.stop()


def _event() -> EventCreated:
    body = {
        "type": "football",
        "team_1": "Ajax",
        "team_2": "PSV",
        "event_date": datetime.now(UTC) + timedelta(hours=2),
        "odds": {"team_1": "2.10", "team_2": "3.40", "draw": "3.00"},
    }
    return EventCreated(
        event_id=uuid.uuid4(), sent_at=datetime.now(UTC), event=EventCreate.model_validate(body)
    )


def test_neither_readiness_nor_publishing_creates_the_events_topic(empty_broker: str) -> None:
    publisher = EventPublisher({"bootstrap.servers": empty_broker}, timeout_s=2.0)
    try:
        with pytest.raises(BrokerUnavailable):
            publisher.ping()
        with pytest.raises(BrokerUnavailable):
            asyncio.run(publisher.publish(_event()))
    finally:
        publisher.close(timeout_s=0)
    existing = AdminClient({"bootstrap.servers": empty_broker}).list_topics(timeout=5).topics
    assert topics.EVENTS not in existing
