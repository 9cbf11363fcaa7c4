"""Topic names and their configuration, and the one place that creates them."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, NewTopic

log = logging.getLogger(__name__)

EVENTS = "events.taxonomy"
BETS = "bets.state"
PARTITIONS = 3
REPLICATION_FACTOR = 1
# Explicit retention: tansu reports only explicitly set configs, and Quix expects one.
RETENTION_MS = str(7 * 24 * 3600 * 1000)
TOPIC_CONFIG = {"retention.ms": RETENTION_MS}


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


def ensure_topics(connection: Mapping[str, str], timeout_s: float = 30.0) -> set[str]:
    """Create any missing topic with `PARTITIONS` partitions; return the ones created.
    `connection` is a librdkafka configuration (betting.kafka.client_config)."""
    admin = AdminClient(dict(connection))
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    missing = [name for name in ALL_TOPICS if name not in existing]
    if not missing:
        return set()
    futures = admin.create_topics(
        [
            NewTopic(name, PARTITIONS, REPLICATION_FACTOR, config=dict(TOPIC_CONFIG))
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
