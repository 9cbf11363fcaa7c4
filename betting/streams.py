"""What the three stream functions share: the application, the topics, dead letters."""

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from quixstreams import Application
from quixstreams.models import TopicConfig
from quixstreams.models.topics import Topic
from quixstreams.sinks import BatchingSink, SinkBackpressureError, SinkBatch
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from betting import metrics, topics
from betting.db import session_scope
from betting.liveness import STATS_INTERVAL_MS, heartbeat_callback
from betting.settings import get_settings

log = logging.getLogger(__name__)

M = TypeVar("M")
# Messages librdkafka keeps fetched ahead, per partition: bounds a function's memory.
PREFETCH_MESSAGES = 10_000
# After a database error, the sink pauses its partitions this long, then replays the batch.
RETRY_AFTER_S = 3.0


def build_app(group: str) -> Application:
    """A Quix application for one function: at-least-once, from the log's beginning,
    checkpointing as `_checkpoint_when_caught_up` says; its metrics served on
    BETTING_METRICS_PORT (if set)."""
    settings = get_settings()
    metrics.serve(settings.metrics_port)
    app = Application(
        broker_address=settings.kafka_brokers,
        consumer_group=group + settings.consumer_group_suffix,
        auto_offset_reset="earliest",
        commit_interval=settings.commit_interval_s,
        commit_every=settings.commit_every,
        # A poll that finds nothing is how a function knows it has caught up and may
        # checkpoint (`_checkpoint_when_caught_up`): a quarter of the interval, so that
        # finding out adds little to a change's latency.
        consumer_poll_timeout=min(settings.commit_interval_s / 4, 1.0),
        processing_guarantee="at-least-once",
        consumer_extra_config={
            "session.timeout.ms": settings.kafka_session_timeout_ms,
            "heartbeat.interval.ms": settings.kafka_heartbeat_interval_ms,
            "fetch.wait.max.ms": settings.kafka_fetch_wait_max_ms,
            # What librdkafka prefetches per partition ahead of the function (its default,
            # 100,000 messages, held a third of a million small records, ~250 MB, while the
            # bet writer worked through a 1M-bet settlement): a few batches' worth is enough.
            "queued.min.messages": PREFETCH_MESSAGES,
            **_statistics_config(),
        },
        producer_extra_config={"acks": "all"},
        use_changelog_topics=False,
        # JSON logs: Quix's records go to the root logger's handler (launcher/cli.py).
        loglevel=None
        if settings.log_format == "json"
        else logging.getLevelName(settings.log_level.upper()),
    )
    _checkpoint_when_caught_up(app)
    return app


# While messages keep coming, a function checkpoints at least this often all the same.
BUSY_CHECKPOINT_S = 1.0


def _checkpoint_when_caught_up(app: Application) -> None:
    """Checkpoint every `commit_interval_s` once the function has caught up with its topic
    (its last poll found nothing); while a backlog is still queued, only after `commit_every`
    messages or `BUSY_CHECKPOINT_S`, whichever comes first.

    Why: with a short interval, a settlement's records were written in a transaction (and an
    offset commit) every 20 ms, a few hundred rows each; a backlog is now written in batches
    of up to `commit_every`, and a burst that is over is written at once. Quix Streams offers
    a checkpoint after every message; this gate reads its processing state (private, so the
    version is pinned; tests/unit/test_checkpoints.py holds the rule).
    """
    context = app._processing_context
    tracker = app._run_tracker
    commit = context.commit_checkpoint
    busy_after_s = max(BUSY_CHECKPOINT_S, get_settings().commit_interval_s)

    def due_while_busy() -> bool:
        checkpoint = context.checkpoint
        every: int = checkpoint._commit_every
        counted: int = checkpoint._total_offsets_processed
        age = time.monotonic() - checkpoint._created_at
        return 0 < every <= counted or age >= busy_after_s

    def commit_checkpoint(force: bool = False, revoking: bool = False) -> None:
        if force or not tracker._message_consumed or due_while_busy():
            commit(force=force, revoking=revoking)

    context.commit_checkpoint = commit_checkpoint  # type: ignore[method-assign]


def _statistics_config() -> dict[str, Any]:
    """librdkafka's periodic statistics, for the heartbeat and the metrics, whichever is on."""
    settings = get_settings()
    callbacks = []
    if settings.heartbeat_file:
        callbacks.append(heartbeat_callback(settings.heartbeat_file, settings.stall_after_s))
    if settings.metrics_port:
        callbacks.append(metrics.statistics_callback())
    if not callbacks:
        return {}

    def on_stats(stats_json: str) -> None:
        for callback in callbacks:
            callback(stats_json)

    return {"statistics.interval.ms": STATS_INTERVAL_MS, "stats_cb": on_stats}


def declare_topic(app: Application, name: str, **serialization: Any) -> Topic:
    """Declare `name` with the configured partition count and retention."""
    wanted = topics.shape()
    config = TopicConfig(
        num_partitions=wanted.partitions,
        replication_factor=wanted.replication_factor,
        extra_config=dict(wanted.config),
    )
    return app.topic(name, config=config, **serialization)


@dataclass(frozen=True)
class LogRecord:
    """One message as read from a partition."""

    partition: int
    offset: int
    timestamp_ms: int
    key: Any
    value: bytes | None


def records_of(batch: SinkBatch) -> list[LogRecord]:
    return [
        LogRecord(batch.partition, item.offset, item.timestamp, item.key, item.value)
        for item in batch
    ]


@dataclass(frozen=True)
class Rejected:
    """A record that must not be applied, and why."""

    record: LogRecord
    reason: str


def decode_all(
    records: list[LogRecord], decode: Callable[[bytes | None], M]
) -> tuple[list[tuple[LogRecord, M]], list[Rejected]]:
    """Parse every record with `decode`; those it refuses are rejected with its reason."""
    parsed: list[tuple[LogRecord, M]] = []
    rejected: list[Rejected] = []
    for record in records:
        try:
            parsed.append((record, decode(record.value)))
        except ValueError as exc:
            rejected.append(Rejected(record, f"unparseable message: {exc}"))
    return parsed, rejected


class ApplyBatch(Protocol):
    """A function's business step: apply one partition's records, return the rejects."""

    def __call__(
        self, *, session: Session, topic: str, records: list[LogRecord]
    ) -> list[Rejected]: ...


class DeadLetters:
    """Sends what a function must not apply to `<topic>.dlq`, with the reason in headers."""

    def __init__(self, app: Application, source_topic: str, group: str) -> None:
        self._producer = app.get_producer()
        self._topic = topics.dlq(source_topic)
        self._source_topic = source_topic
        self._group = group
        self.sent = 0

    def send(self, record: LogRecord, reason: str) -> None:
        log.warning(
            "dead-lettering %s[%d]@%d: %s",
            self._source_topic,
            record.partition,
            record.offset,
            reason,
        )
        self._producer.produce(
            topic=self._topic,
            key=record.key,
            value=record.value,
            headers=[
                ("reason", reason.encode()),
                ("source.topic", self._source_topic.encode()),
                ("source.partition", str(record.partition).encode()),
                ("source.offset", str(record.offset).encode()),
                ("consumer.group", self._group.encode()),
            ],
        )
        self.sent += 1

    def flush(self) -> None:
        """Wait until the broker has every dead letter; before offsets are committed."""
        remaining = self._producer.flush(timeout=30)
        if remaining:
            raise RuntimeError(f"{remaining} dead letters were not delivered")


@contextmanager
def retry_on_database_error() -> Iterator[None]:
    """Turn a database outage into backpressure: pause, then replay the batch."""
    try:
        yield
    except DBAPIError as exc:
        if not exc.connection_invalidated and not _is_transient(exc):
            raise
        log.warning("database unavailable, retrying in %.0f s: %s", RETRY_AFTER_S, exc)
        raise SinkBackpressureError(retry_after=RETRY_AFTER_S) from exc


def _is_transient(exc: DBAPIError) -> bool:
    # Deadlocks, serialization failures and lost connections are worth a replay.
    code = getattr(exc.orig, "pgcode", None)
    return code in {"40001", "40P01"} or code is None or str(code).startswith("08")


class DatabaseSink(BatchingSink):
    """Applies a partition's batch in one transaction at the checkpoint, before its offsets
    are committed; what must not be applied goes to the dead-letter topic."""

    def __init__(self, apply: ApplyBatch, dead_letters: DeadLetters) -> None:
        super().__init__()
        self._apply = apply
        self._dead_letters = dead_letters

    def write(self, batch: SinkBatch) -> None:
        records = records_of(batch)
        started = time.perf_counter()
        with retry_on_database_error(), session_scope() as session:
            rejected = self._apply(session=session, topic=batch.topic, records=records)
            # Dead letters are delivered before the transaction commits: a crash in between
            # replays the batch, which dead-letters them again rather than losing them.
            for item in rejected:
                self._dead_letters.send(item.record, item.reason)
            self._dead_letters.flush()
        metrics.batch_written(
            batch.topic, len(records), len(rejected), time.perf_counter() - started
        )
        log.info(
            "applied %s[%d] up to offset %d: %d messages, %d dead-lettered",
            batch.topic,
            batch.partition,
            records[-1].offset if records else -1,
            len(records),
            len(rejected),
        )


def run_writer(group: str, topic: str, apply: ApplyBatch) -> None:
    """Run a function that applies `topic` to the database in batches (both writers): the
    records go to a `DatabaseSink` over `apply`, what it rejects to the dead-letter topic."""
    app = build_app(group)
    source = declare_topic(app, topic, value_deserializer="bytes")
    app.dataframe(source).sink(DatabaseSink(apply, DeadLetters(app, topic, group)))
    app.run()
