"""A function serves its Prometheus metrics while it works; every process logs JSON when told
to (BETTING_LOG_FORMAT=json)."""

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from betting import topics
from launcher.local import free_port
from tests.conftest import Stack
from tests.integration.conftest import Functions, Log, server_process, wait_for

pytestmark = pytest.mark.e2e


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    try:
        text = httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return {}
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_event_writer_serves_metrics_that_move_and_logs_json(
    stack: Stack, extra_functions: Functions, log: Log
) -> None:
    port = free_port()
    writer = extra_functions.start(
        "event-writer",
        BETTING_METRICS_PORT=str(port),
        BETTING_LOG_FORMAT="json",
        # Its own group, from the log's beginning: the session's writer keeps its partitions.
        BETTING_CONSUMER_GROUP_SUFFIX=f"-metrics-{uuid.uuid4().hex[:6]}",
    )
    url = f"http://127.0.0.1:{port}/metrics"
    topic = (("topic", topics.EVENTS),)
    before = wait_for(lambda: _scrape(url), 30, "the metrics endpoint")
    processed_before = before.get(("betting_function_records_processed_total", topic), 0.0)
    dead_before = before.get(("betting_function_records_dead_lettered_total", topic), 0.0)

    log.create_event()
    log.send(topics.EVENTS, "not-an-event", b"{not json")

    def moved() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        now = _scrape(url)
        processed = now.get(("betting_function_records_processed_total", topic), 0.0)
        dead = now.get(("betting_function_records_dead_lettered_total", topic), 0.0)
        lag_seen = any(name == "betting_function_consumer_lag" for name, _ in now)
        if processed >= processed_before + 2 and dead >= dead_before + 1 and lag_seen:
            return now
        return None

    after = wait_for(moved, 60, "processed, dead-lettered and lag to show")
    assert after[("betting_function_batch_size_count", topic)] >= 1
    assert after[("betting_function_write_duration_seconds_count", topic)] >= 1
    assert after[("betting_function_rebalances_total", ())] >= 1
    assert after[("betting_function_seconds_since_last_commit", ())] >= 0

    writer.stop()
    assert writer.log_path is not None
    entries = _json_lines(writer.log_path)
    assert any("dead-lettering" in entry["message"] for entry in entries)


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a log file, each parsed as one JSON object with the fields we write."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert lines, f"{path.name} is empty"
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    return entries


def test_a_server_logs_json_its_own_lines_and_uvicorns(stack: Stack) -> None:
    with server_process(stack, "bet-maker", BETTING_LOG_FORMAT="json") as (server, url):
        assert httpx.get(f"{url}/healthz").status_code == 200
    assert server.log_path is not None
    loggers = {entry["logger"] for entry in _json_lines(server.log_path)}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers
