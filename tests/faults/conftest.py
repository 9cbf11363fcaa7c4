"""A whole system of its own for each fault test, started the way `make run` starts it: its own
Postgres and broker, `betting setup`, the two HTTP servers and the three functions as real
processes. A supervisor restarts whatever dies, as Kubernetes would (with a back-off, and on a
failed liveness probe), so a test may kill, stop or pause any part without touching the other
tests' servers. Everything started here is ended by PID at teardown, whatever the outcome.
"""

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from bench.settlement import insert_bets as bench_insert_bets
from betting.auth import Role, mint_token
from betting.liveness import heartbeat_age_s
from betting.settings import get_settings
from launcher import local
from tests.conftest import TEST_SETTINGS
from tests.integration.conftest import wait_for

T = TypeVar("T")
SERVERS = ("line-provider", "bet-maker")
FUNCTIONS = ("event-writer", "bet-scorer", "bet-writer")
# The liveness probes of k8s/base/functions: `betting probe --max-age N`.
PROBE_MAX_AGE_S = {"event-writer": 60.0, "bet-scorer": 180.0, "bet-writer": 60.0}
# Kubernetes restarts a container at once, then backs off (10 s, 20 s, ... in a real cluster);
# shorter here so a test's budget goes on the fault, not on waiting.
FIRST_RESTART_S = 0.5
MAX_RESTART_S = 8.0


class Background:
    """A thread that runs `step` every so often until the `running()` block ends."""

    def __init__(self, name: str, step: Callable[[], None], every_s: Callable[[], float]) -> None:
        self._name, self._step, self._every_s = name, step, every_s
        self._stop = threading.Event()

    @contextmanager
    def running(self) -> Iterator[None]:
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s()):
            self._step()


@dataclass
class Supervisor:
    """Restarts a dead component after a back-off that doubles while it keeps dying, and kills
    one whose heartbeat is older than its probe allows (which then restarts): Kubernetes'
    restart policy and liveness probe, for processes on this machine."""

    components: dict[str, local.Component]
    workdir: Path
    restarts: Counter[str] = field(default_factory=Counter)
    probe_kills: Counter[str] = field(default_factory=Counter)
    _held: set[str] = field(default_factory=set)
    _started_at: dict[str, float] = field(default_factory=dict)
    _due: dict[str, float] = field(default_factory=dict)
    _delay: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        now = time.monotonic()
        for name in self.components:
            self._started_at[name] = now
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def kill(self, name: str) -> None:
        """SIGKILL `name` now; the supervisor restarts it."""
        with self._lock:
            self.components[name].signal(signal.SIGKILL)

    @contextmanager
    def held(self, *names: str) -> Iterator[None]:
        """Do not restart `names` meanwhile (the test stops and starts them itself)."""
        with self._lock:
            self._held.update(names)
        try:
            yield
        finally:
            with self._lock:
                self._held.difference_update(names)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                for name, component in self.components.items():
                    if name not in self._held:
                        self._look_after(name, component)

    def _look_after(self, name: str, component: local.Component) -> None:
        now = time.monotonic()
        if component.running():
            up_s = now - self._started_at[name]
            if up_s > 30:  # up long enough: the next crash restarts at once again
                self._delay.pop(name, None)
            max_age = PROBE_MAX_AGE_S.get(name)
            stale = max_age is not None and up_s > max_age
            if stale and heartbeat_age_s(str(self._heartbeat(name))) > (max_age or 0):
                self.probe_kills[name] += 1
                component.signal(signal.SIGKILL)
            return
        due = self._due.get(name)
        if due is None:
            delay = self._delay.get(name, FIRST_RESTART_S)
            self._due[name] = now + delay
            self._delay[name] = min(delay * 2, MAX_RESTART_S)
        elif now >= due:
            del self._due[name]
            component.start()
            self._started_at[name] = now
            self.restarts[name] += 1

    def _heartbeat(self, name: str) -> Path:
        return self.workdir / f"{name}.heartbeat"


@dataclass
class System:
    """One running system and the handles a fault test needs on its parts."""

    workdir: Path
    postgres: local.Postgres
    broker: local.Broker
    env: dict[str, str]
    urls: dict[str, str]
    components: dict[str, local.Component]
    supervisor: Supervisor

    def connect(self) -> Any:
        """A direct, autocommitting connection to the system's database."""
        return self.postgres.connect()

    def client(self, server: str, timeout_s: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.urls[server], timeout=timeout_s)

    def setup(self) -> None:
        """`betting setup`, as its Job or `make run` runs it, in a process of its own."""
        subprocess.run(
            [str(Path(sys.executable).parent / "betting"), "setup"],
            env={**os.environ, **self.env},
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        for name, url in self.urls.items():

            def ready(url: str = url) -> bool:
                try:
                    return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(ready, timeout_s, f"the {name} to be ready")

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def new_system(workdir: Path, **overrides: str) -> System:
    """Postgres, the broker, the servers and the functions, as `make run` starts them
    (development settings) but on free ports, with the test sessions' short consumer sessions
    so a killed member's partitions move in seconds; `start_system` starts them."""
    # Durable, as `make run` and production run it: a crash must not lose a commit.
    postgres = local.Postgres(workdir / "postgres", local.free_port())
    broker = local.Broker(local.free_port())
    ports = {name: local.free_port() for name in SERVERS}
    env = {
        **TEST_SETTINGS,
        "BETTING_ENV": "dev",
        "BETTING_DATABASE_URL": postgres.url,
        "BETTING_KAFKA_BROKERS": broker.address,
        "BETTING_LINE_PROVIDER_PORT": str(ports["line-provider"]),
        "BETTING_BET_MAKER_PORT": str(ports["bet-maker"]),
        "BETTING_HTTP_HOST": "127.0.0.1",
        # The key this process mints tokens with, whatever the session has set.
        "BETTING_AUTH_SECRET": get_settings().auth_secret,
        **overrides,
    }
    components = {
        name: local.Component(
            name,
            env={**env, "BETTING_HEARTBEAT_FILE": str(workdir / f"{name}.heartbeat")},
            log_path=workdir / f"{name}.log",
        )
        for name in (*SERVERS, *FUNCTIONS)
    }
    return System(
        workdir=workdir,
        postgres=postgres,
        broker=broker,
        env=env,
        urls={name: f"http://127.0.0.1:{port}" for name, port in ports.items()},
        components=components,
        supervisor=Supervisor(components, workdir),
    )


def start_system(system: System) -> None:
    system.postgres.start()
    system.broker.start()
    system.setup()
    for component in system.components.values():
        component.start()
    system.supervisor.start()
    system.wait_ready()


def stop_system(system: System) -> None:
    """End every process by PID, in an order that lets each stop cleanly if it can."""
    system.supervisor.stop()
    for component in system.components.values():
        component.stop(timeout_s=10)
    system.broker.stop()  # resumes it first if a test left it paused
    # Stopped already by a test, or never started.
    with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
        system.postgres.stop(mode="immediate")


@pytest.fixture
def system(request: pytest.FixtureRequest) -> Iterator[System]:
    """A fresh system for one test; the logs are kept (and named) if the test fails."""
    workdir = Path(tempfile.mkdtemp(prefix="betting-faults-", dir="/var/tmp"))
    workdir.chmod(0o755)  # the database server may run as another user (we may be root)
    overrides: dict[str, str] = getattr(request, "param", {})
    system = new_system(workdir, **overrides)
    failed = True
    try:
        start_system(system)
        failed = False
        yield system
    finally:
        stop_system(system)
        failed = failed or getattr(request.node, "failed", False)
        if failed:
            print(f"\nthe system's logs are kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


FIGURES: list[str] = []


def report(line: str) -> None:
    """Print a test's figures, and repeat them in the session's summary (`make test` captures
    what tests print)."""
    print(f"\n{line}")
    FIGURES.append(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("fault-injection figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        item.failed = True  # type: ignore[attr-defined]
    return report


# What the tests send.


def operator() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token('operator-faults', Role.OPERATOR)}"}


def player(name: str | None = None) -> dict[str, str]:
    user = name or f"player-{uuid.uuid4().hex[:8]}"
    return {"Authorization": f"Bearer {mint_token(user, Role.PLAYER)}"}


def insert_bets(system: System, event_id: str, count: int) -> None:
    """`count` bets on the event, stored as the bet maker stores them (straight into Postgres:
    placing millions over HTTP is not what these tests are about)."""
    conn = system.connect()
    try:
        with conn.cursor() as cur:
            bench_insert_bets(cur, event_id, count)
    finally:
        conn.close()


def random_pause(low_s: float, high_s: float) -> float:
    return random.uniform(low_s, high_s)  # noqa: S311 (timing, not security)
