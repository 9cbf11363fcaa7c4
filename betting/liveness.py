"""Liveness of a stream function: a heartbeat file that only a progressing consumer touches.

librdkafka serves its statistics callback from inside `poll()`, so the callback runs only
while the function's main loop is polling. On each report the function touches the heartbeat
file, unless some assigned partition has had lag without its committed offset moving for
`stall_after_s`. `betting probe` then fails when the file is older than its `--max-age`:
a loop that hangs (a step blocked forever) or spins without committing (a sink failing on
every batch) both stop the heartbeat, and Kubernetes restarts the pod.
"""

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

STATS_INTERVAL_MS = 5000


def heartbeat_callback(path: str, stall_after_s: float) -> Callable[[str], None]:
    """A librdkafka `stats_cb` that touches `path` while the consumer makes progress."""
    last_move: dict[tuple[str, str], tuple[int, float]] = {}

    def on_stats(stats_json: str) -> None:
        now = time.monotonic()
        stalled = False
        for topic, topic_stats in json.loads(stats_json).get("topics", {}).items():
            for partition, stats in topic_stats.get("partitions", {}).items():
                if partition == "-1" or stats.get("fetch_state") in (None, "none", "stopped"):
                    continue
                committed = int(stats.get("committed_offset", -1001))
                lag = int(stats.get("consumer_lag", -1))
                key = (topic, partition)
                seen = last_move.get(key)
                if lag <= 0 or seen is None or seen[0] != committed:
                    last_move[key] = (committed, now)
                elif now - seen[1] >= stall_after_s:
                    stalled = True
        if not stalled:
            Path(path).touch()

    return on_stats


def heartbeat_age_s(path: str) -> float:
    """Seconds since the heartbeat file was touched (infinite if it does not exist)."""
    try:
        return time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return float("inf")
