"""The line provider's one Kafka producer: publishes event messages and waits for the broker's
ack. Only the line provider imports this module; the bet maker has no Kafka client at all."""

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from typing import Annotated

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from fastapi import Depends, Request
from prometheus_client import Counter

from betting import topics
from betting.messages import EventCreated, EventUpdated, encode
from gateway import metrics

log = logging.getLogger(__name__)

EVENTS_PUBLISHED = Counter(
    "gateway_events_published_total",
    "Event messages the broker acknowledged.",
    ["kind"],
    registry=metrics.REGISTRY,
)


PRODUCERS_REPLACED = Counter(
    "gateway_kafka_producers_replaced_total",
    "Kafka producers replaced after a fatal error (fenced or forgotten by the broker).",
    registry=metrics.REGISTRY,
)


# Errors after which this producer's id is no good to the broker: it was fenced (tansu answers
# PRODUCER_FENCED to an idempotent producer after a pause), or forgotten (after a restart).
# librdkafka does not always count them as fatal, but every later message fails the same way.
PRODUCER_ID_REJECTED = frozenset(
    {
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
        KafkaError._FENCED,
    }
)


# While messages time out, the producer is replaced at most this often.
REPLACE_STUCK_AFTER_S = 5.0


def _unrecoverable(error: KafkaError) -> bool:
    return bool(error.fatal()) or error.code() in PRODUCER_ID_REJECTED


class BrokerUnavailable(Exception):
    """The broker did not take a message, or cannot be reached."""


class EventPublisher:
    """Wraps a `Producer` whose delivery callbacks run on a background polling thread.

    An idempotent producer whose id the broker rejects (fenced, as tansu does after a pause;
    forgotten, after a restart) or that hits a fatal error fails every message from then on;
    one whose messages time out may be stuck behind what it still waits for (its id, a topic
    that was made again). The polling thread then replaces it with a new producer, which gets a
    new id: at once after such an error, and at most every `REPLACE_STUCK_AFTER_S` while
    messages time out. What the old one still held is answered 503, and writes work again as
    soon as the broker does.
    """

    def __init__(self, connection: Mapping[str, str], timeout_s: float) -> None:
        """`connection`: the brokers and their security (betting.kafka.client_config)."""
        self._timeout_s = timeout_s
        self._config = {
            **connection,
            "acks": "all",
            # Retries then keep each partition's order, which per-event order relies on.
            "enable.idempotence": True,
            "linger.ms": 1,
            # Never let the broker create a missing topic (with its default partition count)
            # on our metadata request: `betting setup` creates the topics with their
            # partitions; until it has, publishing fails with a 503.
            "allow.auto.create.topics": False,
            "topic.metadata.refresh.interval.ms": topics.METADATA_REFRESH_MS,
            # librdkafka fails the delivery itself when the broker stays silent this long.
            "message.timeout.ms": int(timeout_s * 1000),
            # librdkafka's own log lines go through ours (forwarded by `poll`).
            "logger": log,
            "error_cb": self._on_error,
        }
        # The fatal error of the current producer, until the polling thread replaces it.
        self._fatal: KafkaError | None = None
        # Whether a message timed out since the last replacement, and when that was.
        self._timed_out = False
        self._replaced_at = time.monotonic()
        self._lock = threading.Lock()  # between a produce and a replacement
        self._producer = Producer(self._config)
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-producer", daemon=True)
        self._poller.start()

    def _on_error(self, error: KafkaError) -> None:
        # Transient errors (the broker unreachable for a while) librdkafka recovers from itself.
        if _unrecoverable(error):
            self._fatal = error

    def _poll(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.1)
            if self._fatal is not None:
                self._replace(f"it failed: {self._fatal.str()}")
            elif self._timed_out and time.monotonic() - self._replaced_at > REPLACE_STUCK_AFTER_S:
                self._replace("its messages time out")

    def _replace(self, why: str) -> None:
        """A new producer for one that failed or is stuck; what the old one held fails now."""
        self._fatal, self._timed_out, self._replaced_at = None, False, time.monotonic()
        log.error("replacing the Kafka producer: %s", why)
        with self._lock:
            failed, self._producer = self._producer, Producer(self._config)
        PRODUCERS_REPLACED.inc()
        failed.purge()
        failed.poll(0)  # runs the purged messages' delivery callbacks: those requests get 503

    async def publish(self, message: EventCreated | EventUpdated) -> None:
        """Send `message` keyed by its event id; return once the broker has acknowledged it."""
        loop = asyncio.get_running_loop()
        delivered: asyncio.Future[None] = loop.create_future()

        def on_delivery(error: KafkaError | None, _: Message) -> None:
            if error is not None and _unrecoverable(error):
                self._fatal = error
            elif error is not None and error.code() == KafkaError._MSG_TIMED_OUT:
                self._timed_out = True
            # A closed loop means nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, delivered, error)

        try:
            with self._lock:
                self._producer.produce(
                    topics.EVENTS,
                    key=str(message.event_id),
                    value=encode(message),
                    on_delivery=on_delivery,
                )
        except (BufferError, KafkaException) as exc:
            if isinstance(exc, KafkaException) and _unrecoverable(exc.args[0]):
                self._fatal = exc.args[0]
            raise BrokerUnavailable(str(exc)) from exc
        try:
            # The client's bound: librdkafka checks its message timeout only about once a
            # second, so it may fire later. A message answered 503 may still be delivered.
            await asyncio.wait_for(delivered, self._timeout_s)
        except TimeoutError:
            self._timed_out = True
            raise BrokerUnavailable("the broker did not acknowledge in time") from None
        EVENTS_PUBLISHED.labels(message.kind).inc()

    def ping(self, timeout_s: float = 2.0) -> None:
        """Raise `BrokerUnavailable` unless the broker answers and knows the events topic, and
        the producer can send (one that failed is replaced within a poll, 0.1 s)."""
        if self._fatal is not None:
            raise BrokerUnavailable(f"the producer failed: {self._fatal.str()}")
        try:
            metadata = self._producer.list_topics(topics.EVENTS, timeout=timeout_s)
        except KafkaException as exc:
            raise BrokerUnavailable(str(exc)) from exc
        topic = metadata.topics.get(topics.EVENTS)
        if topic is None or topic.error is not None:
            raise BrokerUnavailable(f"topic {topics.EVENTS} is not available")

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop polling and deliver what is still queued."""
        self._closing.set()
        self._poller.join()
        left = self._producer.flush(timeout_s)
        if left:
            log.warning("%d event messages were not delivered before shutdown", left)


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():  # the request timed out or was cancelled
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(BrokerUnavailable(error.str()))


def get_publisher(request: Request) -> EventPublisher:
    """The process's producer, opened by the line provider's lifespan."""
    publisher: EventPublisher = request.app.state.publisher
    return publisher


PublisherDep = Annotated[EventPublisher, Depends(get_publisher)]


def broker_reachable(publisher: PublisherDep) -> bool:
    """The line provider's readiness check: the broker answers and knows the events topic."""
    try:
        publisher.ping()
    except BrokerUnavailable:
        log.warning("readiness: broker unavailable", exc_info=True)
        return False
    return True
