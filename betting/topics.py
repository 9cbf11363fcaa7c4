"""Topic names and their configuration, and the one place that creates them."""

import logging
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, NewTopic

from betting.settings import Settings, get_settings

log = logging.getLogger(__name__)

EVENTS = "events.taxonomy"
BETS = "bets.state"
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


def ensure_topics(brokers: str, timeout_s: float = 30.0) -> set[str]:
    """Create any missing topic with the configured shape; return the ones created."""
    admin = AdminClient({"bootstrap.servers": brokers})
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    missing = [name for name in ALL_TOPICS if name not in existing]
    if not missing:
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
    return created
