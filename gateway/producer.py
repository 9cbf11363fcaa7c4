"""The line provider's one Kafka producer: publishes event messages and waits for the broker's
ack. Only the line provider imports this module; the bet maker has no Kafka client at all."""

import asyncio
import contextlib
import logging
import threading
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


class BrokerUnavailable(Exception):
    """The broker did not take a message, or cannot be reached."""


class EventPublisher:
    """Wraps a `Producer` whose delivery callbacks run on a background polling thread."""

    def __init__(self, brokers: str, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._producer = Producer(
            {
                "bootstrap.servers": brokers,
                "acks": "all",
                # Retries then keep each partition's order, which per-event order relies on.
                "enable.idempotence": True,
                "linger.ms": 1,
                # librdkafka fails the delivery itself when the broker stays silent this long.
                "message.timeout.ms": int(timeout_s * 1000),
                # Never let the broker create a missing topic (with its default of one
                # partition) on our metadata request: `betting setup` creates the topics with
                # their partitions; until it has, publishing fails with a 503.
                "allow.auto.create.topics": False,
                # librdkafka's own log lines go through ours (forwarded by `poll`).
                "logger": log,
            }
        )
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-producer", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.1)

    async def publish(self, message: EventCreated | EventUpdated) -> None:
        """Send `message` keyed by its event id; return once the broker has acknowledged it."""
        loop = asyncio.get_running_loop()
        delivered: asyncio.Future[None] = loop.create_future()

        def on_delivery(error: KafkaError | None, _: Message) -> None:
            # A closed loop means nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, delivered, error)

        try:
            self._producer.produce(
                topics.EVENTS,
                key=str(message.event_id),
                value=encode(message),
                on_delivery=on_delivery,
            )
        except (BufferError, KafkaException) as exc:
            raise BrokerUnavailable(str(exc)) from exc
        try:
            # A second of slack: librdkafka's own message timeout should fire first.
            await asyncio.wait_for(delivered, self._timeout_s + 1)
        except TimeoutError:
            raise BrokerUnavailable("the broker did not acknowledge in time") from None
        EVENTS_PUBLISHED.labels(message.kind).inc()

    def ping(self, timeout_s: float = 2.0) -> None:
        """Raise `BrokerUnavailable` unless the broker answers and knows the events topic."""
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
