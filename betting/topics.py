"""Topic names and their configuration, and the one place that creates them."""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

from betting.settings import Settings, get_settings

log = logging.getLogger(__name__)

EVENTS = "events.taxonomy"
BETS = "bets.state"
# How often the clients refresh what they know of their topics: one made again
# (a broker that restarted empty, then `betting setup`) is seen within seconds, not after
# librdkafka's default five minutes.
METADATA_REFRESH_MS = 5000
# The default partition count (BETTING_TOPIC_PARTITIONS), as local stacks and tests create it.
PARTITIONS: int = Settings.model_fields["topic_partitions"].default


@dataclass(frozen=True)
class TopicShape:
    """How every topic is created: partitions, replication factor, retention."""

    partitions: int
    replication_factor: int
    # Explicit retention: tansu reports only explicitly set configs, and Quix expects one.
    config: dict[str, str]


def shape() -> TopicShape:
    """The topics' shape from the settings (BETTING_TOPIC_*)."""
    settings = get_settings()
    return TopicShape(
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
        config={"retention.ms": str(settings.topic_retention_ms)},
    )


def dlq(topic: str) -> str:
    """The dead-letter topic of `topic`."""
    return f"{topic}.dlq"


ALL_TOPICS = (EVENTS, dlq(EVENTS), BETS, dlq(BETS))


@dataclass(frozen=True)
class ConsumerGroups:
    event_writer: str = "event-writer"
    bet_scorer: str = "bet-scorer"
    bet_writer: str = "bet-writer"


GROUPS = ConsumerGroups()


class TopicsNotReady(Exception):
    """A topic a component needs is missing or has the wrong partition count; `str(error)`
    names it and what was expected."""


def check_topics(
    connection: Mapping[str, str], names: Iterable[str], timeout_s: float = 10.0
) -> None:
    """Raise `TopicsNotReady` unless every topic in `names` exists with the configured
    partition count (BETTING_TOPIC_PARTITIONS).

    Nothing creates a topic implicitly (docs/DESIGN.md, rule 8): a component that found its
    topic missing and went on would wait on, or write to, a log nobody set up.
    """
    # Listing every topic never asks the broker to create one (naming one may, on some).
    try:
        metadata = AdminClient(dict(connection)).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        brokers = connection.get("bootstrap.servers")
        raise TopicsNotReady(f"cannot list the topics at {brokers}: {exc}") from exc
    partitions = shape().partitions
    problems = []
    for name in names:
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            problems.append(
                f"topic {name} does not exist (expected {partitions} partitions); "
                "`betting setup` creates it"
            )
        elif len(topic.partitions) != partitions:
            problems.append(
                f"topic {name} has {len(topic.partitions)} partitions, expected {partitions}; "
                "recreate it with that many (`betting setup` creates a missing one)"
            )
    if problems:
        raise TopicsNotReady("; ".join(problems))


def exists(connection: Mapping[str, str], topic: str, timeout_s: float = 10.0) -> bool:
    """Whether the broker lists `topic`; raises `TopicsNotReady` if it does not answer."""
    try:
        metadata = _admin(connection).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise TopicsNotReady(f"cannot list the topics: {exc}") from exc
    return topic in metadata.topics


UNKNOWN_INCARNATION = "unknown"
"""What `incarnation` answers for a broker that gives topics no id: recreations go unseen."""
_NO_TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAA"  # the all-zero id, as confluent-kafka prints it


@lru_cache
def _cached_admin(connection: tuple[tuple[str, str], ...]) -> AdminClient:
    return AdminClient(dict(connection))


def _admin(connection: Mapping[str, str]) -> AdminClient:
    """One admin client per connection configuration, kept for the process's lifetime."""
    return _cached_admin(tuple(sorted(connection.items())))


def incarnation(connection: Mapping[str, str], topic: str, timeout_s: float = 10.0) -> str:
    """Which incarnation of `topic` the broker has now: its topic id (Kafka's KIP-516), a new
    one each time the topic is created; raises `TopicsNotReady` if it cannot tell.

    Offsets are positions in one incarnation; the stores record which (docs/DESIGN.md, rule 8).
    """
    try:
        [future] = (
            _admin(connection)
            .describe_topics(TopicCollection([topic]), request_timeout=timeout_s)
            .values()
        )
        topic_id = str(future.result(timeout=timeout_s).topic_id)
    except Exception as exc:  # KafkaException, or the future's own timeout
        raise TopicsNotReady(f"cannot describe topic {topic}: {exc}") from exc
    if topic_id in ("", "None", _NO_TOPIC_ID):
        log.warning("the broker gives %s no topic id: a recreated topic goes unseen", topic)
        return UNKNOWN_INCARNATION
    return topic_id


def ensure_topics(connection: Mapping[str, str], timeout_s: float = 30.0) -> set[str]:
    """Create any missing topic with the configured shape; return the ones created.
    `connection` is a librdkafka configuration (betting.kafka.client_config).

    Raises `TopicsNotReady` if one that exists has another partition count."""
    admin = AdminClient(dict(connection))
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    missing = [name for name in ALL_TOPICS if name not in existing]
    if not missing:
        check_topics(connection, ALL_TOPICS, timeout_s)
        return set()
    wanted = shape()
    futures = admin.create_topics(
        [
            NewTopic(name, wanted.partitions, wanted.replication_factor, config=wanted.config)
            for name in missing
        ],
        operation_timeout=timeout_s,
    )
    created = set()
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.add(name)
        except Exception as exc:  # another process may have created it meanwhile
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    log.info("created topics: %s", ", ".join(sorted(created)))
    check_topics(connection, ALL_TOPICS, timeout_s)
    return created
