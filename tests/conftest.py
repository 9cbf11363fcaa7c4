"""The test session's own Postgres and broker, started on free ports when a test needs them."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from betting.db import get_engine
from betting.settings import get_settings
from betting.setup import prepare
from launcher import local

TEST_SETTINGS = {
    "BETTING_AUTH_SECRET": "test-secret-that-is-at-least-32-bytes-long",
    "BETTING_COMMIT_INTERVAL_S": "0.2",
    # Short sessions make tansu hand out partitions in about a second.
    "BETTING_KAFKA_SESSION_TIMEOUT_MS": "2000",
    "BETTING_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    "BETTING_SCORER_WAIT_TIMEOUT_S": "60",
    # A lost dependency shows in /readyz at once (the grace window has its own tests).
    "BETTING_READINESS_GRACE_S": "0",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`integration` marks exactly the tests that need the session's servers (pyproject.toml)."""
    for item in items:
        # fixturenames is the whole closure: a test that reaches `stack` through another
        # fixture (`client`, `functions`, ...) needs the servers as much as one that names it.
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
        elif item.get_closest_marker("e2e") is not None:
            raise pytest.UsageError(f"{item.nodeid} is marked e2e but uses no servers")


@dataclass
class Stack:
    postgres: local.Postgres
    broker: local.Broker
    workdir: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **TEST_SETTINGS,
            "BETTING_DATABASE_URL": self.postgres.url,
            "BETTING_KAFKA_BROKERS": self.broker.address,
        }


def _use_settings(env: dict[str, str]) -> None:
    os.environ.update(env)
    get_settings.cache_clear()
    get_engine.cache_clear()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """A migrated database and a broker with the topics, for the whole session."""
    workdir = Path(tempfile.mkdtemp(prefix="betting-test-"))
    workdir.chmod(0o755)  # the database server may run as another user (we may be root)
    postgres = local.Postgres(workdir / "postgres", local.free_port(), durable=False)
    postgres.start()
    broker = local.Broker(local.free_port()).start()
    stack = Stack(postgres=postgres, broker=broker, workdir=workdir)
    _use_settings(stack.env)
    prepare()
    try:
        yield stack
    finally:
        get_engine().dispose()
        broker.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
