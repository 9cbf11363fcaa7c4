"""The system under measurement: the local stack `make run` starts, on free ports.

This is the one module that imports the local-stack machinery; point `devstack` elsewhere
here when it moves. Postgres is durable and every component runs with the settings `make run`
ships: only the addresses are given (free ports, so a running `make run` or test session is
left alone) and the gateway binds 127.0.0.1 because load is only ever sent there.
"""

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from sqlalchemy.engine import make_url

from betting import devstack
from betting.auth import Role, mint_token
from betting.db import get_engine
from betting.settings import get_settings
from betting.setup import prepare

FUNCTIONS = ("event-writer", "bet-scorer", "bet-writer")
free_port = devstack.free_port


@dataclass
class Stack:
    """The running servers and components, and how to reach them."""

    database_url: str
    gateway_url: str
    workdir: Path
    components: dict[str, devstack.Component]

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
    """A token the stack's gateway accepts (it shares the default secret)."""
    return mint_token(user, role)


@contextmanager
def local_stack() -> Iterator[Stack]:
    """Postgres, the broker, setup, the gateway and the three functions; stopped on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="betting-bench-", dir="/var/tmp"))
    workdir.chmod(0o755)  # the database server may run as another user (we may be root)
    postgres = devstack.Postgres(workdir / "postgres", free_port())
    broker: devstack.Broker | None = None
    components: dict[str, devstack.Component] = {}
    failed = False
    try:
        postgres.start()
        broker = devstack.Broker(free_port()).start()
        gateway_port = free_port()
        env = {
            "BETTING_DATABASE_URL": postgres.url,
            "BETTING_KAFKA_BROKERS": broker.address,
            "BETTING_GATEWAY_PORT": str(gateway_port),
            "BETTING_GATEWAY_HOST": "127.0.0.1",
        }
        os.environ.update(env)
        get_settings.cache_clear()
        get_engine.cache_clear()
        prepare()
        for command in ("gateway", *FUNCTIONS):
            components[command] = devstack.Component(
                command, env=env, log_path=workdir / f"{command}.log"
            ).start()
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        devstack._wait_until_healthy(f"{gateway_url}/readyz", components["gateway"], 90)
        yield Stack(postgres.url, gateway_url, workdir, components)
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
