"""What operators read: JSON log lines, the functions' metrics from librdkafka's statistics,
and the readiness grace window that keeps a shared dependency's blip from emptying a Service."""

import json
import logging
import sys
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from betting import metrics
from betting.logs import JsonFormatter
from gateway.routers.ops import GraceWindow


def test_a_json_log_line_parses_with_the_records_fields() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("betting.x").makeRecord(
            "betting.x", logging.WARNING, __file__, 1, "lost %s", ("it",), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "WARNING",
        "betting.x",
        "lost it",
    )
    assert "ValueError: boom" in entry["exception"]
    assert entry["time"].endswith("+00:00")


def _stats(committed: int, lag: int, rebalances: int) -> str:
    partition = {"fetch_state": "active", "committed_offset": committed, "consumer_lag": lag}
    stats: dict[str, Any] = {
        "cgrp": {"rebalance_cnt": rebalances},
        "topics": {
            "bets.state": {"partitions": {"1": partition, "-1": {"consumer_lag": 99}}},
        },
    }
    return json.dumps(stats)


def _sample(name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(generate_latest(metrics.REGISTRY).decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"no sample {name} {labels}")


def test_statistics_set_lag_count_rebalances_and_see_commits_move() -> None:
    on_stats = metrics.statistics_callback()
    rebalances = _sample("betting_function_rebalances_total")
    on_stats(_stats(committed=5, lag=7, rebalances=1))
    first_commit = _sample("betting_function_last_commit_timestamp_seconds")
    assert _sample("betting_function_consumer_lag", topic="bets.state", partition="1") == 7
    on_stats(_stats(committed=9, lag=0, rebalances=3))
    assert _sample("betting_function_consumer_lag", topic="bets.state", partition="1") == 0
    assert _sample("betting_function_rebalances_total") == rebalances + 3
    assert _sample("betting_function_last_commit_timestamp_seconds") >= first_commit
    assert _sample("betting_function_seconds_since_last_commit") < 5
    # The "-1" pseudo-partition (librdkafka's internal one) is no partition of ours.
    with pytest.raises(AssertionError):
        _sample("betting_function_consumer_lag", topic="bets.state", partition="-1")


def test_a_written_batch_counts_records_dead_letters_size_and_time() -> None:
    metrics.batch_written("t.metrics", records=10, dead_lettered=2, seconds=0.05)
    assert _sample("betting_function_records_processed_total", topic="t.metrics") == 10
    assert _sample("betting_function_records_dead_lettered_total", topic="t.metrics") == 2
    assert _sample("betting_function_batch_size_count", topic="t.metrics") == 1
    assert _sample("betting_function_write_duration_seconds_sum", topic="t.metrics") == 0.05


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("answers", "down"),
    [
        pytest.param([(0, False)], True, id="never-answered"),
        pytest.param([(0, True), (5, False)], False, id="blip-inside-the-grace"),
        pytest.param([(0, True), (5, False), (25, False)], True, id="outage-past-the-grace"),
        pytest.param([(0, True), (25, False), (26, True)], False, id="back-again"),
    ],
)
def test_a_dependency_counts_as_down_only_past_the_grace_window(
    answers: list[tuple[float, bool]], down: bool
) -> None:
    clock = Clock()
    window = GraceWindow(clock)
    result = None
    for at, ok in answers:
        clock.now = 1000.0 + at
        result = window.down("database", ok, grace_s=20.0)
    assert result is down
