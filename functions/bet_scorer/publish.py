"""Sends the scorer's records to `bets.state` straight through librdkafka, already encoded.

Why not the stream's own `to_topic`: Quix Streams wraps each produced record in several layers
of Python (its row, serializer, producer and delivery bookkeeping), and for a settlement that
was most of the scorer's time (py-spy, 10k bets: 63 % under `to_topic`, against 29 % in the
produce call itself). Each change's records are delivered before its step returns, so the
offset the checkpoint commits after it never runs ahead of what the broker holds: at-least-once
as before.

A change of an event with millions of bets is sent in chunks of BETTING_SCORER_CHUNK_SIZE
records, each delivered before the next is read (memory and the replay after a failure stay
bounded) and followed by a touch of the heartbeat file (betting/liveness.py): the step polls
no consumer meanwhile, so librdkafka's statistics, which touch it otherwise, are not served.
"""

from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer

from betting.kafka import client_config
from betting.settings import get_settings
from functions.bet_scorer.score import ScoredBet

# Serve delivery reports this often, so librdkafka's queue is freed as it goes.
POLL_EVERY = 10_000
FLUSH_TIMEOUT_S = 60.0


class DeliveryFailed(RuntimeError):
    """The broker did not take every record of a change: the step fails and is replayed."""


class Publisher:
    """One producer for `topic`, partitioning by key as Quix Streams' own does (murmur2)."""

    def __init__(self, topic: str) -> None:
        settings = get_settings()
        self._topic = topic
        self._chunk = settings.scorer_chunk_size
        self._heartbeat = Path(settings.heartbeat_file) if settings.heartbeat_file else None
        self._failed: KafkaError | None = None
        self._producer = Producer(
            {
                **client_config(get_settings()),
                "partitioner": "murmur2",
                "acks": "all",
                # `betting setup` creates the topics with their shape; never the broker.
                "allow.auto.create.topics": False,
                "on_delivery": self._delivered,
            }
        )

    def _delivered(self, error: KafkaError | None, _: Message) -> None:
        if error is not None and self._failed is None:
            self._failed = error

    def send_all(self, records: Iterable[ScoredBet]) -> int:
        """Send every record and wait until the broker has them all; return how many."""
        produce, poll, topic = self._producer.produce, self._producer.poll, self._topic
        sent = 0
        for key, value in records:
            while True:
                try:
                    produce(topic, value, key)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    poll(0.1)
            sent += 1
            if sent % self._chunk == 0:
                self._delivered_chunk()
            elif sent % POLL_EVERY == 0:
                poll(0)
        self._delivered_chunk()
        return sent

    def _delivered_chunk(self) -> None:
        """Wait until the broker has every record sent so far; then the step is alive."""
        remaining = self._producer.flush(FLUSH_TIMEOUT_S)
        failed, self._failed = self._failed, None
        if remaining or failed is not None:
            raise DeliveryFailed(f"{remaining} records undelivered, first error: {failed}")
        if self._heartbeat is not None:
            self._heartbeat.touch()

    def close(self) -> None:
        self._producer.flush(FLUSH_TIMEOUT_S)
