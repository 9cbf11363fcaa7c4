"""`betting <command>`: one entrypoint for every component, as the container image runs it.

Each command imports what it runs only when it runs, so a server needs nothing of the
functions (and the bet maker nothing of Kafka), and `betting dev` needs the dev tooling
(launcher/local) that the image leaves out."""

import argparse
import functools
import importlib
import logging
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

from betting import logs
from betting.auth import Role, mint_token
from betting.settings import UnsafeSettings, get_settings

Command = Callable[[argparse.Namespace], None]


def refuse_unsafe(run: Command) -> Command:
    """`run`, refused with a one-line message when the settings are unsafe (`check_safe`)."""

    @functools.wraps(run)
    def guarded(args: argparse.Namespace) -> None:
        try:
            get_settings().check_safe()
        except UnsafeSettings as error:
            raise SystemExit(f"betting {args.command}: {error}") from None
        run(args)

    guarded.refuses_unsafe = True  # type: ignore[attr-defined]
    return guarded


def is_guarded(run: Command) -> bool:
    return getattr(run, "refuses_unsafe", False)


def _setup(_: argparse.Namespace) -> None:
    from betting.db import use_function_timeouts
    from betting.setup import prepare

    use_function_timeouts()  # a rebase settles every bet in a few statements
    prepare()


def _migrate(_: argparse.Namespace) -> None:
    from betting.setup import migrate

    migrate()


def _token(args: argparse.Namespace) -> None:
    print(mint_token(args.user or str(uuid.uuid4()), Role(args.role), args.ttl))


def _probe(args: argparse.Namespace) -> None:
    from betting.liveness import heartbeat_age_s

    path = get_settings().heartbeat_file
    if not path:
        raise SystemExit("BETTING_HEARTBEAT_FILE is not set")
    age = heartbeat_age_s(path)
    if age > args.max_age:
        raise SystemExit(f"no progress for {age:.0f} s (limit {args.max_age:.0f} s)")


def _smoke(args: argparse.Namespace) -> None:
    from launcher.smoke import Api, play

    operator = args.operator_token or mint_token("smoke-operator", Role.OPERATOR)
    player = args.player_token or mint_token(f"smoke-{uuid.uuid4()}", Role.PLAYER)
    play(Api(args.api, args.bets_api or args.api, operator, player), args)


def _line_provider(_: argparse.Namespace) -> None:
    from gateway.line_provider import main

    main()


def _bet_maker(_: argparse.Namespace) -> None:
    from gateway.bet_maker import main

    main()


def _function(module: str) -> None:
    """Run the stream function in `module`, with the functions' database timeouts."""
    from betting.db import use_function_timeouts

    use_function_timeouts()
    importlib.import_module(module).main()


def _event_writer(_: argparse.Namespace) -> None:
    _function("functions.event_writer.main")


def _bet_scorer(_: argparse.Namespace) -> None:
    _function("functions.bet_scorer.main")


def _bet_writer(_: argparse.Namespace) -> None:
    _function("functions.bet_writer.main")


def _dev(args: argparse.Namespace) -> None:
    # Dev tooling: in a checkout with the dev extras, never in the image (see launcher/local).
    try:
        from launcher.local import run_dev
    except ModuleNotFoundError as missing:
        raise SystemExit(
            f"betting dev: the local dev tooling is not installed here ({missing.name} is "
            "missing); run it from a checkout: make run"
        ) from None

    run_dev(
        port=args.port,
        postgres_port=args.postgres_port,
        broker_port=args.broker_port,
        data_dir=args.data_dir,
    )


# Every component refuses unsafe settings before it starts; `dev` is local development by
# definition, and a probe only reports on a process that has already started.
COMMANDS: dict[str, tuple[Command, str]] = {
    "setup": (refuse_unsafe(_setup), "run the migrations and create the topics (idempotent)"),
    "migrate": (refuse_unsafe(_migrate), "run the database migrations"),
    "token": (refuse_unsafe(_token), "print a signed access token"),
    "probe": (_probe, "liveness probe of a function: fails if its heartbeat is stale"),
    "smoke": (refuse_unsafe(_smoke), "play a whole match against a running system (helm test)"),
    "line-provider": (
        refuse_unsafe(_line_provider),
        "serve the events API (the one Kafka producer)",
    ),
    "bet-maker": (refuse_unsafe(_bet_maker), "serve the bets API (no broker needed)"),
    "event-writer": (refuse_unsafe(_event_writer), "run the event writer function"),
    "bet-scorer": (refuse_unsafe(_bet_scorer), "run the bet scorer function"),
    "bet-writer": (refuse_unsafe(_bet_writer), "run the bet writer function"),
    "dev": (_dev, "run the whole system locally (starts Postgres and a broker if needed)"),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="betting", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        if name == "token":
            sub.add_argument("--role", choices=[r.value for r in Role], default=Role.PLAYER)
            sub.add_argument("--user", help="the user id (`sub`); a new UUID if omitted")
            sub.add_argument("--ttl", type=int, help="seconds until it expires")
        if name == "smoke":
            from launcher.smoke import add_arguments

            add_arguments(sub, tokens_required=False)
        if name == "probe":
            sub.add_argument("--max-age", type=float, default=60.0, help="seconds")
        if name == "dev":
            sub.add_argument("--port", type=int, default=8000, help="the dev front's port")
            sub.add_argument("--postgres-port", type=int, default=5432)
            sub.add_argument("--broker-port", type=int, default=9092)
            sub.add_argument("--data-dir", type=Path, help="where the local database lives")
    args = parser.parse_args(argv)
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    # Dependencies' chatter that tells an operator nothing.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    COMMANDS[args.command][0](args)


if __name__ == "__main__":
    main()
