"""Prometheus metrics of the stream functions, served on BETTING_METRICS_PORT.

What a function counts itself: records it processed and dead-lettered, each written batch's
size and write time (`batch_written`, from betting/streams.py). What its consumer knows: lag
per partition, rebalances and when a committed offset last moved, read from librdkafka's
statistics (`statistics_callback`), which `poll()` delivers every few seconds. The gateway's
servers keep their own series (gateway/metrics.py).
"""

import json
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Our own registry: /metrics shows the function's series and nothing registered by imports.
REGISTRY = CollectorRegistry()

PROCESSED = Counter(
    "betting_function_records_processed_total",
    "Records the function has taken from its topic and dealt with (applied or skipped).",
    ["topic"],
    registry=REGISTRY,
)
DEAD_LETTERED = Counter(
    "betting_function_records_dead_lettered_total",
    "Records sent to the dead-letter topic instead of being applied.",
    ["topic"],
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "betting_function_batch_size",
    "Records in one batch written to Postgres at a checkpoint.",
    ["topic"],
    buckets=(1, 10, 100, 1_000, 10_000, 100_000),
    registry=REGISTRY,
)
WRITE_SECONDS = Histogram(
    "betting_function_write_duration_seconds",
    "Time to write one batch to Postgres, dead letters included.",
    ["topic"],
    registry=REGISTRY,
)
LAG = Gauge(
    "betting_function_consumer_lag",
    "Messages in an assigned partition not yet consumed (librdkafka's consumer_lag).",
    ["topic", "partition"],
    registry=REGISTRY,
)
REBALANCES = Counter(
    "betting_function_rebalances_total",
    "Consumer group rebalances this consumer went through.",
    registry=REGISTRY,
)
LAST_COMMIT = Gauge(
    "betting_function_last_commit_timestamp_seconds",
    "Unix time a committed offset of an assigned partition last moved (start time until then).",
    registry=REGISTRY,
)
SINCE_COMMIT = Gauge(
    "betting_function_seconds_since_last_commit",
    "Seconds since a committed offset last moved; grows while idle, alert on it with lag.",
    registry=REGISTRY,
)
LAST_STATISTICS = Gauge(
    "betting_function_last_statistics_timestamp_seconds",
    "Unix time the consumer last reported statistics: only a polling main loop reports.",
    registry=REGISTRY,
)


def records_processed(topic: str, count: int) -> None:
    PROCESSED.labels(topic).inc(count)


def batch_written(topic: str, records: int, dead_lettered: int, seconds: float) -> None:
    """One batch applied in one transaction: `records` of them, `dead_lettered` rejected."""
    records_processed(topic, records)
    DEAD_LETTERED.labels(topic).inc(dead_lettered)
    BATCH_SIZE.labels(topic).observe(records)
    WRITE_SECONDS.labels(topic).observe(seconds)


def statistics_callback() -> Callable[[str], None]:
    """A librdkafka `stats_cb` that keeps the consumer's gauges and counters current."""
    committed: dict[tuple[str, str], int] = {}
    rebalances_seen = 0
    last_commit = time.time()
    LAST_COMMIT.set(last_commit)
    SINCE_COMMIT.set_function(lambda: time.time() - last_commit)

    def on_stats(stats_json: str) -> None:
        nonlocal rebalances_seen, last_commit
        stats = json.loads(stats_json)
        LAST_STATISTICS.set(time.time())
        count = int(stats.get("cgrp", {}).get("rebalance_cnt", 0))
        if count > rebalances_seen:
            REBALANCES.inc(count - rebalances_seen)
            rebalances_seen = count
        LAG.clear()  # only the partitions assigned now
        for topic, topic_stats in stats.get("topics", {}).items():
            for partition, p in topic_stats.get("partitions", {}).items():
                if partition == "-1" or p.get("fetch_state") in (None, "none", "stopped"):
                    continue
                LAG.labels(topic, partition).set(max(int(p.get("consumer_lag", -1)), 0))
                offset = int(p.get("committed_offset", -1001))
                if committed.get((topic, partition), offset) != offset:
                    last_commit = time.time()
                    LAST_COMMIT.set(last_commit)
                committed[(topic, partition)] = offset

    return on_stats


def serve(port: int) -> None:
    """Serve /metrics on `port` from a daemon thread (0: do not serve)."""
    if port:
        start_http_server(port, registry=REGISTRY)
