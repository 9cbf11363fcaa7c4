"""The function heartbeat: touched while the consumer progresses, not when it stalls."""

import json
import os
import time
from pathlib import Path
from typing import Any

from betting.liveness import heartbeat_age_s, heartbeat_callback


def _stats(committed: int, lag: int, state: str = "active") -> str:
    partition = {"fetch_state": state, "committed_offset": committed, "consumer_lag": lag}
    stats: dict[str, Any] = {"topics": {"events.taxonomy": {"partitions": {"0": partition}}}}
    return json.dumps(stats)


def _age_after(path: Path, callback: Any, stats: str) -> float:
    os.utime(path, (0, 0))
    callback(stats)
    return heartbeat_age_s(str(path))


def test_heartbeat_is_touched_while_committed_offsets_move(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    path.touch()
    callback = heartbeat_callback(str(path), stall_after_s=0.0)
    callback(_stats(committed=5, lag=3))
    time.sleep(0.01)
    assert _age_after(path, callback, _stats(committed=8, lag=3)) < 5


def test_heartbeat_is_touched_when_idle_without_lag(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    path.touch()
    callback = heartbeat_callback(str(path), stall_after_s=0.0)
    callback(_stats(committed=5, lag=0))
    time.sleep(0.01)
    assert _age_after(path, callback, _stats(committed=5, lag=0)) < 5


def test_heartbeat_stops_when_lag_does_not_shrink(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    path.touch()
    callback = heartbeat_callback(str(path), stall_after_s=0.0)
    callback(_stats(committed=5, lag=3))
    time.sleep(0.01)
    assert _age_after(path, callback, _stats(committed=5, lag=3)) > 1000


def test_unassigned_partitions_do_not_count(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    path.touch()
    callback = heartbeat_callback(str(path), stall_after_s=0.0)
    callback(_stats(committed=5, lag=3, state="none"))
    time.sleep(0.01)
    assert _age_after(path, callback, _stats(committed=5, lag=3, state="none")) < 5


def test_missing_heartbeat_is_infinitely_old(tmp_path: Path) -> None:
    assert heartbeat_age_s(str(tmp_path / "absent")) == float("inf")
