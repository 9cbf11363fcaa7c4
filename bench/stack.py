"""The system under measurement: the local stack `make run` starts, on free ports.

This is the one module that imports the local-stack machinery (`launcher.local`); point it
elsewhere here when it moves. Postgres is durable and every component runs with the settings
`make run` ships: only the addresses are given (free ports, so a running `make run` or test
session is left alone) and the servers bind 127.0.0.1 because load is only ever sent there.
The bench talks to the line provider and the bet maker directly, as production clients do;
`make run`'s dev front, which serves both on one address for development, is not measured.
"""

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg2
from sqlalchemy.engine import make_url

from bench.wait import wait_until
from betting.auth import Role, mint_token
from betting.db import get_engine
from betting.settings import get_settings
from betting.setup import prepare
from launcher.local.dev import SERVERS
from launcher.local.processes import Component
from launcher.local.servers import Broker, Postgres, free_port

FUNCTIONS = ("event-writer", "bet-scorer", "bet-writer")
# Which server answers a path: the bet maker serves /bets, the line provider the rest.
BET_PATHS = "/bets"
__all__ = ["FUNCTIONS", "SERVERS", "Stack", "free_port", "local_stack", "token"]


class _ToServer(httpx.HTTPTransport):
    """Sends each request to the server that serves its path, so callers use one client."""

    def __init__(self, urls: dict[str, str]) -> None:
        super().__init__()
        self._urls = {name: httpx.URL(url) for name, url in urls.items()}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        server = "bet-maker" if request.url.path.startswith(BET_PATHS) else "line-provider"
        base = self._urls[server]
        request.url = request.url.copy_with(host=base.host, port=base.port)
        request.headers["Host"] = f"{base.host}:{base.port}"
        return super().handle_request(request)


@dataclass
class Stack:
    """The running servers and components, and how to reach them."""

    database_url: str
    urls: dict[str, str]
    workdir: Path
    components: dict[str, Component]

    def url(self, path: str) -> str:
        """The full URL of `path` on the server that serves it."""
        server = "bet-maker" if path.startswith(BET_PATHS) else "line-provider"
        return f"{self.urls[server]}{path}"

    def client(self) -> httpx.Client:
        """An HTTP client for the whole API: `/events…` and `/bets…` each reach their server."""
        return httpx.Client(
            base_url=self.urls["line-provider"], transport=_ToServer(self.urls), timeout=30
        )

    def pid(self, command: str) -> int:
        return self.components[command].pid

    def connect(self) -> "psycopg2.extensions.connection":
        """A direct, autocommitting connection to the stack's database."""
        url = make_url(self.database_url)
        conn = psycopg2.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database,
        )
        conn.autocommit = True
        return conn

    def check_running(self) -> None:
        dead = [name for name, c in self.components.items() if not c.running()]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} stopped; see the logs in {self.workdir}")


def token(user: str, role: Role) -> str:
    """A token the stack's servers accept (they share the default secret)."""
    return mint_token(user, role)


def _wait_ready(url: str, component: Component) -> None:
    def ready() -> bool:
        if not component.running():
            raise RuntimeError(f"{component.command} stopped while starting")
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 90, f"{component.command} at {url}", interval_s=0.2)


@contextmanager
def local_stack() -> Iterator[Stack]:
    """Postgres, the broker, setup, the two servers and the three functions; stopped on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="betting-bench-", dir="/var/tmp"))
    workdir.chmod(0o755)  # the database server may run as another user (we may be root)
    postgres = Postgres(workdir / "postgres", free_port())
    broker: Broker | None = None
    components: dict[str, Component] = {}
    failed = False
    try:
        postgres.start()
        broker = Broker(free_port()).start()
        ports = {server: free_port() for server in SERVERS}
        env = {
            "BETTING_DATABASE_URL": postgres.url,
            "BETTING_KAFKA_BROKERS": broker.address,
            "BETTING_LINE_PROVIDER_PORT": str(ports["line-provider"]),
            "BETTING_BET_MAKER_PORT": str(ports["bet-maker"]),
            "BETTING_HTTP_HOST": "127.0.0.1",
        }
        os.environ.update(env)
        get_settings.cache_clear()
        get_engine.cache_clear()
        prepare()
        for command in (*SERVERS, *FUNCTIONS):
            components[command] = Component(
                command, env=env, log_path=workdir / f"{command}.log"
            ).start()
        urls = {server: f"http://127.0.0.1:{port}" for server, port in ports.items()}
        for server, url in urls.items():
            _wait_ready(f"{url}/readyz", components[server])
        yield Stack(postgres.url, urls, workdir, components)
    except BaseException:
        failed = True
        raise
    finally:
        for component in components.values():
            component.stop()
        get_engine().dispose()
        if broker is not None:
            broker.stop()
        postgres.stop()
        if failed:
            print(f"the components' logs are kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
