"""What the three stream functions share: the application, the topics, dead letters."""

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

from confluent_kafka import KafkaError, KafkaException, Message
from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import TopicConfig
from quixstreams.models.topics import Topic
from quixstreams.sinks import BatchingSink, SinkBackpressureError, SinkBatch
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from betting import log_watch, metrics, topics
from betting.db import log_is, session_scope
from betting.incarnations import adopt
from betting.kafka import client_config
from betting.liveness import STATS_INTERVAL_MS, heartbeat_callback
from betting.settings import get_settings

log = logging.getLogger(__name__)

M = TypeVar("M")
# Messages librdkafka keeps fetched ahead, per partition: bounds a function's memory.
PREFETCH_MESSAGES = 10_000
# After a database error, the sink pauses its partitions this long, then replays the batch.
RETRY_AFTER_S = 3.0
# After rebasing for a new log, the sink has its batch read again this soon.
NEW_LOG_RETRY_S = 0.1


def build_app(group: str, uses: Sequence[str]) -> Application:
    """A Quix application for one function: at-least-once, from the log's beginning,
    checkpointing as `_checkpoint_when_caught_up` says; its metrics served on
    BETTING_METRICS_PORT (if set).

    Exits with a message naming the topic unless each of `uses` exists with the configured
    partition count: neither Quix nor the broker may create one (docs/DESIGN.md, rule 8).
    """
    settings = get_settings()
    try:
        topics.check_topics(client_config(settings), uses)
    except topics.TopicsNotReady as error:
        raise SystemExit(f"{group}: {error}") from None
    # Before the consumer subscribes: a topic made again later ends the process (rule 8).
    log_watch.start(client_config(settings), uses, settings.log_watch_interval_s)
    metrics.serve(settings.metrics_port)
    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(client_config(settings)),
        consumer_group=group + settings.consumer_group_suffix,
        auto_offset_reset="earliest",
        commit_interval=settings.commit_interval_s,
        commit_every=settings.commit_every,
        # A poll that finds nothing is how a function knows it has caught up and may
        # checkpoint (`_checkpoint_when_caught_up`): a quarter of the interval, so that
        # finding out adds little to a change's latency.
        consumer_poll_timeout=min(settings.commit_interval_s / 4, 1.0),
        processing_guarantee="at-least-once",
        auto_create_topics=False,
        consumer_extra_config={
            "allow.auto.create.topics": False,
            "session.timeout.ms": settings.kafka_session_timeout_ms,
            "heartbeat.interval.ms": settings.kafka_heartbeat_interval_ms,
            "max.poll.interval.ms": settings.kafka_max_poll_interval_ms,
            "fetch.wait.max.ms": settings.kafka_fetch_wait_max_ms,
            # What librdkafka prefetches per partition ahead of the function (its default,
            # 100,000 messages, held a third of a million small records, ~250 MB, while the
            # bet writer worked through a 1M-bet settlement): a few batches' worth is enough.
            "queued.min.messages": PREFETCH_MESSAGES,
            # A topic made again (a broker that restarted empty, then `betting setup`) is
            # joined within seconds, not after librdkafka's default five minutes.
            "topic.metadata.refresh.interval.ms": topics.METADATA_REFRESH_MS,
            **_statistics_config(),
        },
        producer_extra_config={"acks": "all", "allow.auto.create.topics": False},
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


class LogRecord(NamedTuple):
    """One message as read from a partition (a tuple: made for every message, so cheaply)."""

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


def try_decode(decode: Callable[[bytes | None], M], raw: bytes | None) -> M | str:
    """`decode(raw)`, or why it failed.

    Whatever the decoder raises (a validation error, an overflow, a recursion limit) the
    message is bad, never the process: a crash would read it again at every restart.
    """
    try:
        return decode(raw)
    except Exception as exc:
        return f"unparseable message: {type(exc).__name__}: {exc}"


def decode_all(
    records: list[LogRecord], decode: Callable[[bytes | None], M]
) -> tuple[list[tuple[LogRecord, M]], list[Rejected]]:
    """Parse every record with `decode`; those it refuses are rejected with its reason."""
    parsed: list[tuple[LogRecord, M]] = []
    rejected: list[Rejected] = []
    for record in records:
        result = try_decode(decode, record.value)
        if isinstance(result, str):
            rejected.append(Rejected(record, result))
        else:
            parsed.append((record, result))
    return parsed, rejected


class ApplyBatch(Protocol):
    """A function's business step: apply one partition's records, return the rejects."""

    def __call__(
        self, *, session: Session, topic: str, records: list[LogRecord]
    ) -> list[Rejected]: ...


class DeadLettersUndelivered(RuntimeError):
    """The broker did not take every dead letter (refused, or not in time)."""


class DeadLetters:
    """Sends what a function must not apply to `<topic>.dlq`, with the reason in headers."""

    FLUSH_TIMEOUT_S = 30.0

    def __init__(self, app: Application, source_topic: str, group: str) -> None:
        self._producer = app.get_producer()
        self._topic = topics.dlq(source_topic)
        self._source_topic = source_topic
        self._group = group
        self._failed: KafkaError | None = None
        self.sent = 0

    def _delivered(self, error: KafkaError | None, _: Message) -> None:
        if error is not None and self._failed is None:
            self._failed = error

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
            on_delivery=self._delivered,
        )
        self.sent += 1

    def flush(self) -> None:
        """Wait until the broker has every dead letter sent; raise `DeadLettersUndelivered`
        if it refused one or has not taken them all in time."""
        remaining = self._producer.flush(timeout=self.FLUSH_TIMEOUT_S)
        failed, self._failed = self._failed, None
        if remaining or failed is not None:
            raise DeadLettersUndelivered(
                f"{remaining} dead letters still waiting, first refusal: {failed}"
            )


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


# Serialization failure, deadlock, lock wait past `lock_timeout`, statement past
# `statement_timeout` (or cancelled by an operator): each is worth a replay.
TRANSIENT_CODES = frozenset({"40001", "40P01", "55P03", "57014"})


def _is_transient(exc: DBAPIError) -> bool:
    # Those, and lost connections (class 08, or no code at all).
    code = getattr(exc.orig, "pgcode", None)
    return code in TRANSIENT_CODES or code is None or str(code).startswith("08")


class NewLog(Exception):
    """The topic is a new incarnation: the stored positions must be rebased first."""


class ReadAgain(SinkBackpressureError):
    """The store was rebased for a new log: the batch must be read again from the partitions'
    committed positions (its records may be the old log's, fetched before the change)."""


class BatchApplier:
    """Applies one batch of a topic's records in one transaction, then delivers what must not
    be applied to the dead-letter topic; what both writers' loops share.

    A batch is applied only while the store's positions come from the incarnation of the
    topic the broker has now (docs/DESIGN.md, rule 8). When the topic is new, the applier
    rebases the store and raises `ReadAgain`. Anything worth a retry (the database or the
    broker unavailable) raises `SinkBackpressureError`: nothing of the batch was kept, so
    it may be written again.
    """

    def __init__(self, apply: ApplyBatch, dead_letters: DeadLetters) -> None:
        self._apply = apply
        self._dead_letters = dead_letters
        # Dead letters decided by a committed batch whose delivery failed: sent again with the
        # next batch, even if its replay no longer decides them (a later change of the same
        # event, applied meanwhile, makes the refused one look like a duplicate).
        self._owed: dict[tuple[int, int], Rejected] = {}

    def write(self, topic: str, records: list[LogRecord]) -> None:
        started = time.perf_counter()
        try:
            incarnation = topics.incarnation(client_config(get_settings()), topic)
        except topics.TopicsNotReady as exc:
            log.warning("cannot tell the log's incarnation, retrying: %s", exc)
            raise SinkBackpressureError(retry_after=RETRY_AFTER_S) from exc
        log_watch.confirm(topic, incarnation)  # fetched from a log made since? exit
        try:
            with retry_on_database_error(), session_scope() as session:
                if not log_is(session, topic, incarnation):
                    raise NewLog
                rejected = self._apply(session=session, topic=topic, records=records)
        except NewLog:
            self._start_over(topic, incarnation)
        # Delivered after the commit, so no row stays locked while the broker is waited for,
        # and before the batch's offsets are committed.
        self._deliver(rejected)
        took_s = time.perf_counter() - started
        metrics.batch_written(topic, len(records), len(rejected), took_s)
        log.info(
            "applied %s: %d messages, %d dead-lettered, in %.3f s",
            _span(topic, records),
            len(records),
            len(rejected),
            took_s,
        )

    def _deliver(self, rejected: list[Rejected]) -> None:
        """Send `rejected` and any owed dead letters; if the broker does not take them all,
        fail the batch so that it is written again (at-least-once: a dead letter may be sent
        twice, never lost)."""
        for item in rejected:
            self._owed[(item.record.partition, item.record.offset)] = item
        try:
            for item in self._owed.values():
                self._dead_letters.send(item.record, item.reason)
            self._dead_letters.flush()
        except (DeadLettersUndelivered, KafkaException, BufferError) as exc:
            log.warning("dead letters not delivered, reading the batch again: %s", exc)
            raise SinkBackpressureError(retry_after=RETRY_AFTER_S) from exc
        self._owed.clear()

    def _start_over(self, topic: str, incarnation: str) -> None:
        with retry_on_database_error(), session_scope() as session:
            adopt(session, topic, incarnation, rebase_unknown=True)
        log.warning(
            "%s is a new log (%s): stored positions rebased, reading again", topic, incarnation
        )
        raise ReadAgain(retry_after=NEW_LOG_RETRY_S)


def _span(topic: str, records: list[LogRecord]) -> str:
    """Where `records` come from: `topic[partition] up to offset N` for each partition."""
    last: dict[int, int] = {}
    for record in records:
        last[record.partition] = record.offset
    return ", ".join(f"{topic}[{p}] up to offset {o}" for p, o in sorted(last.items())) or topic


class DatabaseSink(BatchingSink):
    """Quix's sink over a `BatchApplier`: a partition's batch is applied in one transaction at
    the checkpoint, before its offsets are committed. Quix reads a batch again from where the
    checkpoint began whenever the applier raises `SinkBackpressureError`."""

    def __init__(self, apply: ApplyBatch, dead_letters: DeadLetters) -> None:
        super().__init__()
        self._applier = BatchApplier(apply, dead_letters)

    def write(self, batch: SinkBatch) -> None:
        self._applier.write(batch.topic, records_of(batch))


def run_writer(group: str, topic: str, apply: ApplyBatch) -> None:
    """Run a function that applies `topic` to the database in batches (both writers): the
    records go to a `DatabaseSink` over `apply`, what it rejects to the dead-letter topic."""

    app = build_app(group, uses=(topic, topics.dlq(topic)))
    source = declare_topic(app, topic, value_deserializer="bytes")
    app.dataframe(source).sink(DatabaseSink(apply, DeadLetters(app, topic, group)))
    app.run()
