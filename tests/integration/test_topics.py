"""Nothing creates a topic implicitly (DESIGN.md rule 8): a component started against a
broker without its topics, or with a topic of the wrong partition count, exits with a message
naming the topic and the count it expects, and the broker is left as it was."""

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from betting import topics
from launcher import local
from tests.conftest import Stack

COMPONENTS = ("line-provider", "event-writer", "bet-scorer", "bet-writer")


@pytest.fixture
def empty_broker() -> Iterator[local.Broker]:
    """A broker of its own, without any topic."""
    broker = local.Broker(local.free_port()).start()
    try:
        yield broker
    finally:
        broker.stop()


def _topics(broker: local.Broker) -> dict[str, int]:
    metadata = AdminClient({"bootstrap.servers": broker.address}).list_topics(timeout=10)
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()}


def _exit_message(stack: Stack, broker: local.Broker, command: str) -> str:
    """Run `betting <command>` against `broker`; return what it printed once it has exited."""
    log_path = stack.workdir / f"{command}-{uuid.uuid4().hex[:6]}.log"
    env = {**stack.env, "BETTING_KAFKA_BROKERS": broker.address}
    component = local.Component(command, env=env, log_path=log_path).start()
    try:
        deadline = time.monotonic() + 60
        while component.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not component.running(), f"{command} kept running: {log_path.read_text()[-2000:]}"
        assert component.stop() != 0
    finally:
        component.stop()
    return log_path.read_text()


@pytest.mark.parametrize("command", COMPONENTS)
def test_a_component_started_without_its_topics_exits_and_creates_none(
    stack: Stack, empty_broker: local.Broker, command: str
) -> None:
    output = _exit_message(stack, empty_broker, command)

    assert f"expected {topics.PARTITIONS} partitions" in output, output[-2000:]
    assert any(f"topic {name} " in output for name in topics.ALL_TOPICS), output[-2000:]
    assert _topics(empty_broker) == {}


@pytest.mark.parametrize("command", COMPONENTS)
def test_a_component_started_with_a_topic_of_the_wrong_partition_count_exits(
    stack: Stack, empty_broker: local.Broker, command: str
) -> None:
    admin = AdminClient({"bootstrap.servers": empty_broker.address})
    futures = admin.create_topics(
        [NewTopic(name, 1, 1, config=topics.shape().config) for name in topics.ALL_TOPICS]
    )
    for future in futures.values():
        future.result(timeout=10)

    output = _exit_message(stack, empty_broker, command)

    assert f"has 1 partitions, expected {topics.PARTITIONS}" in output, output[-2000:]
    assert _topics(empty_broker) == dict.fromkeys(topics.ALL_TOPICS, 1)
