"""`make run` (`betting dev`): the local servers unless given, setup, the gateway and the three
functions, until Ctrl-C."""

import logging
import os
import signal
import threading
import time
import urllib.request
from pathlib import Path

from betting.settings import get_settings
from betting.setup import prepare
from launcher.local.processes import Component
from launcher.local.servers import Broker, Postgres, dev_state_dir, port_is_free

log = logging.getLogger(__name__)

COMPONENTS = ("gateway", "event-writer", "bet-scorer", "bet-writer")
DEV_POSTGRES_PORT = 5432
DEV_BROKER_PORT = 9092


def _wait_until_healthy(url: str, component: Component, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and component.running():
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (local URL)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{component.command} did not become healthy at {url}")


def run_dev(
    postgres_port: int = DEV_POSTGRES_PORT,
    broker_port: int = DEV_BROKER_PORT,
    data_dir: Path | None = None,
) -> None:
    """`make run`: servers (unless given), setup, the gateway and the functions; Ctrl-C stops."""
    # Local development, for this process and the components it starts, unless told otherwise.
    os.environ.setdefault("BETTING_ENV", "dev")
    get_settings.cache_clear()
    settings = get_settings()
    servers: list[Postgres | Broker] = []
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    components: list[Component] = []
    try:
        if "database_url" not in settings.model_fields_set:
            if not port_is_free(postgres_port):
                raise SystemExit(
                    f"port {postgres_port} is taken; set BETTING_DATABASE_URL to use that "
                    "server instead of starting one"
                )
            postgres = Postgres((data_dir or dev_state_dir()) / "postgres", postgres_port)
            postgres.start()
            log.info("started Postgres on port %d, data in %s", postgres_port, postgres.data_dir)
            servers.append(postgres)
            os.environ["BETTING_DATABASE_URL"] = postgres.url
        if "kafka_brokers" not in settings.model_fields_set:
            if not port_is_free(broker_port):
                raise SystemExit(
                    f"port {broker_port} is taken; set BETTING_KAFKA_BROKERS to use that "
                    "broker instead of starting one"
                )
            broker = Broker(broker_port).start()
            log.info("started the tansu broker on port %d (its log lives in memory)", broker_port)
            servers.append(broker)
            os.environ["BETTING_KAFKA_BROKERS"] = broker.address
        get_settings.cache_clear()
        log.info("using the database at %s", _without_password(get_settings().database_url))
        log.info("using the broker at %s", get_settings().kafka_brokers)
        prepare()
        components = [Component(name).start() for name in COMPONENTS]
        _wait_until_healthy(
            f"http://127.0.0.1:{get_settings().gateway_port}/healthz", components[0]
        )
        _print_banner()
        while not stop.wait(0.5):
            dead = [c.command for c in components if not c.running()]
            if dead:
                log.error("%s stopped; shutting down", ", ".join(dead))
                break
    finally:
        for component in components:
            component.stop()
        for server in reversed(servers):
            server.stop()
        log.info("stopped")


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _print_banner() -> None:
    from betting.auth import Role, mint_token

    port = get_settings().gateway_port
    print(
        f"""
  The betting platform is running.

  API        http://127.0.0.1:{port}        docs: http://127.0.0.1:{port}/docs
  Operator   {mint_token("operator-1", Role.OPERATOR)}
  Player     {mint_token("player-1", Role.PLAYER)}

  Try:  curl -s http://127.0.0.1:{port}/events
  Press Ctrl-C to stop everything.
""",
        flush=True,
    )
