"""Topic names and their configuration, and the one place that creates them."""

import logging
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
# How often the clients refresh what they know of their topics: one made again
# (a broker that restarted empty, then `betting setup`) is seen within seconds, not after
# librdkafka's default five minutes.
METADATA_REFRESH_MS = 5000


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
    """Create any missing topic with `PARTITIONS` partitions; return the ones created."""
    admin = AdminClient({"bootstrap.servers": brokers})
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
