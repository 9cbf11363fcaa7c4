"""`make run` (`betting dev`): the local servers unless given, setup, the line provider, the bet
maker and the three functions, and the dev front that serves the whole API on one address,
until Ctrl-C."""

import logging
import os
import signal
import threading
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from betting.settings import get_settings
from betting.setup import prepare
from launcher.local.front import running_front
from launcher.local.processes import Component
from launcher.local.servers import Broker, Postgres, dev_state_dir, port_is_free

log = logging.getLogger(__name__)

SERVERS = ("line-provider", "bet-maker")
COMPONENTS = (*SERVERS, "event-writer", "bet-scorer", "bet-writer")
DEV_PORT = 8000
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


def _server_urls() -> dict[str, str]:
    settings = get_settings()
    return {
        "line-provider": f"http://127.0.0.1:{settings.line_provider_port}",
        "bet-maker": f"http://127.0.0.1:{settings.bet_maker_port}",
    }


def run_dev(
    port: int = DEV_PORT,
    postgres_port: int = DEV_POSTGRES_PORT,
    broker_port: int = DEV_BROKER_PORT,
    data_dir: Path | None = None,
) -> None:
    """`make run`: servers (unless given), setup, the two HTTP servers, the functions and the
    dev front on `port`; Ctrl-C stops."""
    # Local development, for this process and the components it starts, unless told otherwise.
    os.environ.setdefault("BETTING_ENV", "dev")
    get_settings.cache_clear()
    settings = get_settings()
    servers: list[Postgres | Broker] = []
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    components: list[Component] = []
    front = ExitStack()
    try:
        if not port_is_free(port):
            raise SystemExit(f"port {port} is taken; pick another one: betting dev --port N")
        for name, setting in (
            ("line_provider_port", "LINE_PROVIDER"),
            ("bet_maker_port", "BET_MAKER"),
        ):
            taken = getattr(settings, name)
            if not port_is_free(taken):
                raise SystemExit(f"port {taken} is taken; set BETTING_{setting}_PORT to another")
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
        urls = _server_urls()
        for component in components:
            if component.command in urls:
                _wait_until_healthy(f"{urls[component.command]}/healthz", component)
        api = front.enter_context(running_front(port, urls["line-provider"], urls["bet-maker"]))
        _print_banner(api, urls)
        while not stop.wait(0.5):
            dead = [c.command for c in components if not c.running()]
            if dead:
                log.error("%s stopped; shutting down", ", ".join(dead))
                break
    finally:
        front.close()
        for component in components:
            component.stop()
        for server in reversed(servers):
            server.stop()
        log.info("stopped")


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _print_banner(api: str, urls: dict[str, str]) -> None:
    from betting.auth import Role, mint_token

    lp, bm = urls["line-provider"], urls["bet-maker"]
    print(
        f"""
  The betting platform is running.

  API            {api}   docs: {api}/docs   (/events and /bets, for development)
  Line provider  {lp}   docs: {lp}/docs   (/events)
  Bet maker      {bm}   docs: {bm}/docs   (/bets)
  Operator       {mint_token("operator-1", Role.OPERATOR)}
  Player         {mint_token("player-1", Role.PLAYER)}

  Try:  curl -s {api}/events
  Press Ctrl-C to stop everything.
""",
        flush=True,
    )
