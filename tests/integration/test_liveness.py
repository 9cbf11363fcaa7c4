"""`betting probe` passes while a function runs and fails once its loop stops."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Stack
from tests.integration.conftest import Functions, wait_for

pytestmark = pytest.mark.e2e

BETTING = str(Path(sys.executable).parent / "betting")


def probe(env: dict[str, str], max_age_s: float) -> bool:
    command = [BETTING, "probe", "--max-age", str(max_age_s)]
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True).returncode == 0


def test_probe_fails_when_a_function_stops_polling(
    stack: Stack, extra_functions: Functions
) -> None:
    heartbeat = stack.workdir / "bet-writer.heartbeat"
    env = {
        **stack.env,
        "BETTING_HEARTBEAT_FILE": str(heartbeat),
        # Its own group: a frozen member must not hold the session writer's partitions.
        "BETTING_CONSUMER_GROUP_SUFFIX": "-liveness-test",
    }
    writer = extra_functions.start("bet-writer", **env)
    wait_for(lambda: probe(env, max_age_s=8), 30, "a fresh heartbeat")

    writer.signal(signal.SIGSTOP)  # the process is there, but its loop is not running
    try:
        wait_for(lambda: not probe(env, max_age_s=8), 30, "the probe to notice")
    finally:
        writer.signal(signal.SIGCONT)
    wait_for(lambda: probe(env, max_age_s=8), 30, "the heartbeat to resume")
