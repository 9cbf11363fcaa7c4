"""The system under measurement: the local stack `make run` starts, on free ports.

This is the one module that imports the local-stack machinery (`launcher.local`). Postgres is
durable and every component runs with the settings `make run` ships: only the addresses are given
(free ports, so a running `make run` or test session is left alone) and the two HTTP servers bind
127.0.0.1 because load is only ever sent there. The bench talks to the servers directly, not
through the dev front, so no proxy hop is measured.
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

from betting.auth import Role, mint_token
from betting.db import get_engine
from betting.settings import get_settings
from betting.setup import prepare
from launcher import local
from launcher.local.dev import _wait_until_healthy

SERVERS = ("line-provider", "bet-maker")
FUNCTIONS = ("event-writer", "bet-scorer", "bet-writer")
free_port = local.free_port


@dataclass
class Stack:
    """The running servers and components, and how to reach them."""

    database_url: str
    events_url: str
    bets_url: str
    workdir: Path
    components: dict[str, local.Component]

    def client(self, timeout_s: float = 30) -> httpx.Client:
        """One client for the whole API: `/bets…` goes to the bet maker, the rest to the line
        provider, as the Ingress routes them in a cluster."""
        return httpx.Client(
            base_url=self.events_url, timeout=timeout_s, transport=_Routing(self.bets_url)
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


class _Routing(httpx.HTTPTransport):
    """Sends requests for `/bets…` to the bet maker's address."""

    def __init__(self, bets_url: str) -> None:
        super().__init__()
        self._bets = httpx.URL(bets_url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/bets"):
            request.url = request.url.copy_with(host=self._bets.host, port=self._bets.port)
        return super().handle_request(request)


def token(user: str, role: Role) -> str:
    """A token the stack's gateway accepts (it shares the default secret)."""
    return mint_token(user, role)


@contextmanager
def local_stack() -> Iterator[Stack]:
    """Postgres, the broker, setup, the two servers and the three functions; stopped on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="betting-bench-", dir="/var/tmp"))
    workdir.chmod(0o755)  # the database server may run as another user (we may be root)
    postgres = local.Postgres(workdir / "postgres", free_port())
    broker: local.Broker | None = None
    components: dict[str, local.Component] = {}
    failed = False
    try:
        postgres.start()
        broker = local.Broker(free_port()).start()
        ports = {"line-provider": free_port(), "bet-maker": free_port()}
        env = {
            "BETTING_DATABASE_URL": postgres.url,
            "BETTING_KAFKA_BROKERS": broker.address,
            "BETTING_LINE_PROVIDER_PORT": str(ports["line-provider"]),
            "BETTING_BET_MAKER_PORT": str(ports["bet-maker"]),
            "BETTING_HTTP_HOST": "127.0.0.1",
            # As `make run`: a local stack, whose development auth key the servers then accept.
            "BETTING_ENV": os.environ.get("BETTING_ENV", "dev"),
        }
        os.environ.update(env)
        get_settings.cache_clear()
        get_engine.cache_clear()
        prepare()
        for command in (*SERVERS, *FUNCTIONS):
            components[command] = local.Component(
                command, env=env, log_path=workdir / f"{command}.log"
            ).start()
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for name, url in urls.items():
            _wait_until_healthy(f"{url}/readyz", components[name], 90)
        yield Stack(postgres.url, urls["line-provider"], urls["bet-maker"], workdir, components)
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
