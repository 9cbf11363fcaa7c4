"""`make run` (`betting dev`): starts everything, serves the whole API through its dev front,
stops cleanly, and survives a restart.

The embedded broker forgets its log when it stops while the database keeps its rows; the
setup step notices the new log and rebases the stored versions, so updates sent after a
restart are applied instead of being skipped as stale.
"""

import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from betting.auth import Role, mint_token
from launcher import local
from tests.conftest import Stack
from tests.integration.conftest import event_over_http, publish_event, wait_for

pytestmark = pytest.mark.e2e


class DevStack:
    def __init__(self, stack: Stack, own_servers: bool = True) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="betting-dev-test-"))
        self.data_dir.chmod(0o755)
        self.postgres_port = local.free_port()
        self.ports = {
            "front": local.free_port(),
            "line provider": local.free_port(),
            "bet maker": local.free_port(),
        }
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BETTING_")},
            **{k: v for k, v in stack.env.items() if k.startswith("BETTING_")},
            "BETTING_LINE_PROVIDER_PORT": str(self.ports["line provider"]),
            "BETTING_BET_MAKER_PORT": str(self.ports["bet maker"]),
        }
        if own_servers:
            del self.env["BETTING_DATABASE_URL"], self.env["BETTING_KAFKA_BROKERS"]
        self.process: subprocess.Popen[bytes] | None = None
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        # The whole API at one address, as the README's walkthrough uses it.
        self.url = self.urls["front"]

    def start(self) -> None:
        log = open(self.data_dir / "dev.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "betting"),
                "dev",
                "--port",
                str(self.ports["front"]),
                "--postgres-port",
                str(self.postgres_port),
                "--broker-port",
                str(local.free_port()),
                "--data-dir",
                str(self.data_dir),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, self.output()
            try:
                return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 90, "the dev stack to be ready")
        # The banner is printed once everything is up.
        wait_for(lambda: "Press Ctrl-C" in self.output(), 30, "the banner")

    def output(self) -> str:
        return (self.data_dir / "dev.log").read_text(errors="replace")

    def interrupt(self) -> int:
        """Ctrl-C, as a user would; return the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)


@pytest.fixture
def dev(stack: Stack) -> Iterator[DevStack]:
    running = DevStack(stack)
    yield running  # pytest runs what follows whatever the test's outcome
    if running.process is not None and running.process.poll() is None:
        running.interrupt()


def operator() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token('op', Role.OPERATOR)}"}


def player() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token('alice', Role.PLAYER)}"}


def test_dev_stack_prints_its_addresses_and_tokens_and_stops_cleanly_on_ctrl_c(
    dev: DevStack,
) -> None:
    dev.start()
    output = dev.output()
    for url in dev.urls.values():
        assert f"{url}   docs: {url}/docs" in output
    assert output.count("eyJ") >= 2  # an operator and a player token
    for url in dev.urls.values():
        assert httpx.get(f"{url}/readyz").json() == {"status": "ok"}

    assert dev.interrupt() == 0
    assert all(local.port_is_free(port) for port in dev.ports.values())
    assert local.port_is_free(dev.postgres_port)


def test_the_dev_front_serves_both_servers_calls_and_one_document(dev: DevStack) -> None:
    dev.start()
    lp, bm = dev.urls["line provider"], dev.urls["bet maker"]

    document = httpx.get(f"{dev.url}/openapi.json").json()

    own = {
        path
        for url in (lp, bm)
        for path in httpx.get(f"{url}/openapi.json").json()["paths"]
        if path.startswith(("/events", "/bets"))
    }
    assert own and set(document["paths"]) == own
    assert httpx.get(f"{dev.url}/docs").status_code == 200
    # Each server answers only its own calls; the front answers both.
    assert httpx.get(f"{lp}/bets", headers=player()).status_code == 404
    assert httpx.get(f"{bm}/events").status_code == 404
    assert httpx.get(f"{dev.url}/events").status_code == 200
    assert httpx.get(f"{dev.url}/bets", headers=player()).status_code == 200


def test_restarted_dev_stack_applies_new_updates(dev: DevStack) -> None:
    dev.start()
    event_id = publish_event(dev.url, operator())
    bet = httpx.post(
        f"{dev.url}/bets",
        headers={**player(), "Idempotency-Key": str(uuid.uuid4())},
        json={"event_id": event_id, "market": "team_1", "amount": "5.00"},
    )
    assert bet.status_code == 201, bet.text
    # A change is checked against the event as stored, so each waits for the one before.
    for change in ({"state": "active"}, {"score": "1-0"}, {"score": "2-0"}):
        response = httpx.patch(f"{dev.url}/events/{event_id}", headers=operator(), json=change)
        assert response.status_code == 202, response.text
        event_over_http(dev.url, event_id, **change)
    before = event_over_http(dev.url, event_id, score="2-0")
    assert before["version"] >= 3
    assert dev.interrupt() == 0

    dev.start()  # same database, a new (empty) broker log
    response = httpx.patch(
        f"{dev.url}/events/{event_id}", headers=operator(), json={"score": "2-1"}
    )
    assert response.status_code == 202
    after = event_over_http(dev.url, event_id, score="2-1")
    assert after["version"] < before["version"]  # a position in the new log
    response = httpx.patch(
        f"{dev.url}/events/{event_id}", headers=operator(), json={"state": "finished"}
    )
    assert response.status_code == 202
    event_over_http(dev.url, event_id, state="finished")

    def settled() -> bool:
        body = httpx.get(f"{dev.url}/bets/{bet.json()['id']}", headers=player()).json()
        return bool(body["state"] == "win")

    wait_for(settled, 30, "the bet to be settled after the restart")


def test_dev_stack_uses_the_servers_it_is_given(stack: Stack) -> None:
    dev = DevStack(stack, own_servers=False)
    # Groups of its own: tansu can wedge a group whose members leave while still joining,
    # which would stall the session's functions in the default groups.
    dev.env["BETTING_CONSUMER_GROUP_SUFFIX"] = "-dev-stack-test"
    try:
        dev.start()
        output = dev.output()
        assert "started Postgres" not in output and "started the tansu broker" not in output
        assert f"using the broker at {stack.broker.address}" in output
        assert f":{stack.postgres.port}/" in output
    finally:
        assert dev.interrupt() == 0
    # The servers it was given are still there.
    assert not local.port_is_free(stack.postgres.port)
    assert not local.port_is_free(stack.broker.port)
