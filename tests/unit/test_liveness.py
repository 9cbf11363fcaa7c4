"""The function heartbeat: touched while the consumer progresses, not when it stalls."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

from betting.liveness import heartbeat_age_s, heartbeat_callback


def _stats(committed: int, lag: int, state: str = "active") -> str:
    partition = {"fetch_state": state, "committed_offset": committed, "consumer_lag": lag}
    stats: dict[str, Any] = {"topics": {"events.taxonomy": {"partitions": {"0": partition}}}}
    return json.dumps(stats)


@pytest.mark.parametrize(
    ("first", "then", "touched"),
    [
        pytest.param(_stats(5, lag=3), _stats(8, lag=3), True, id="commits-move"),
        pytest.param(_stats(5, lag=0), _stats(5, lag=0), True, id="idle-without-lag"),
        pytest.param(_stats(5, lag=3), _stats(5, lag=3), False, id="lag-without-commits"),
        pytest.param(
            _stats(5, lag=3, state="none"), _stats(5, lag=3, state="none"), True, id="unassigned"
        ),
    ],
)
def test_heartbeat_is_touched_only_while_the_consumer_progresses(
    tmp_path: Path, first: str, then: str, touched: bool
) -> None:
    path = tmp_path / "heartbeat"
    path.touch()
    # stall_after_s=0: the second report with unchanged commits and lag already counts.
    callback = heartbeat_callback(str(path), stall_after_s=0.0)
    callback(first)
    os.utime(path, (0, 0))  # as if last touched long ago
    callback(then)
    assert (heartbeat_age_s(str(path)) < 60) is touched


def test_missing_heartbeat_is_infinitely_old(tmp_path: Path) -> None:
    assert heartbeat_age_s(str(tmp_path / "absent")) == float("inf")
