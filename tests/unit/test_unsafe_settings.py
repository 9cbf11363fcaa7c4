"""Outside local development, nothing starts with an auth secret anyone could know or guess."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from betting.settings import DEV_AUTH_SECRET, Settings, UnsafeSettings, get_settings
from launcher import cli
from tests.apps import APPS, load

STRONG = "0123456789abcdef" * 2  # 32 bytes
WEAK = {
    "the built-in development key": DEV_AUTH_SECRET,
    "empty": "",
    "31 bytes": STRONG[:31],
}
# Every `betting` command that is a component of the system, or mints tokens.
GUARDED = (*APPS, "event-writer", "bet-scorer", "bet-writer", "setup", "migrate", "token", "smoke")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set BETTING_* variables for one test; the settings are read afresh before and after."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.parametrize("secret", WEAK.values(), ids=WEAK.keys())
def test_a_default_empty_or_short_secret_is_refused_outside_development(secret: str) -> None:
    with pytest.raises(UnsafeSettings, match="BETTING_AUTH_SECRET"):
        Settings(env="production", auth_secret=secret).check_safe()


@pytest.mark.parametrize("secret", WEAK.values(), ids=WEAK.keys())
def test_local_development_takes_any_secret(secret: str) -> None:
    Settings(env="dev", auth_secret=secret).check_safe()


def test_a_random_secret_of_32_bytes_is_safe() -> None:
    Settings(env="production", auth_secret=STRONG).check_safe()


def test_without_betting_env_the_settings_are_production(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.delenv("BETTING_ENV", raising=False)
    environment.delenv("BETTING_AUTH_SECRET", raising=False)

    assert get_settings().env == "production"
    with pytest.raises(UnsafeSettings):
        get_settings().check_safe()


@pytest.mark.parametrize("command", GUARDED)
def test_every_component_refuses_to_start_with_an_unsafe_secret(
    environment: pytest.MonkeyPatch, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("BETTING_ENV", "production")
    environment.delenv("BETTING_AUTH_SECRET", raising=False)
    started: list[str] = []
    environment.setitem(
        cli.COMMANDS, command, (cli.refuse_unsafe(lambda _: started.append(command)), "")
    )

    with pytest.raises(SystemExit) as exit_:
        cli.main([command])

    assert started == []
    assert "BETTING_AUTH_SECRET" in str(exit_.value.code)
    assert "Traceback" not in capsys.readouterr().err


def test_the_cli_guards_each_component_command() -> None:
    assert {name for name, (run, _) in cli.COMMANDS.items() if cli.is_guarded(run)} == set(GUARDED)


@pytest.mark.parametrize("command", APPS)
def test_a_server_app_refuses_to_start_with_an_unsafe_secret(
    environment: pytest.MonkeyPatch, command: str
) -> None:
    # However it is served (uvicorn directly, a test client), not only by `betting <command>`.
    environment.setenv("BETTING_ENV", "production")
    environment.setenv("BETTING_AUTH_SECRET", "short")

    with pytest.raises(UnsafeSettings), TestClient(load(command)):
        pass


@pytest.mark.parametrize("command", APPS)
def test_a_server_process_exits_at_once_with_a_clear_message(command: str) -> None:
    env = {**os.environ, "BETTING_ENV": "production", "BETTING_AUTH_SECRET": DEV_AUTH_SECRET}

    finished = subprocess.run(
        [str(Path(sys.executable).parent / "betting"), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode != 0
    assert "BETTING_AUTH_SECRET" in finished.stderr
    assert "Traceback" not in finished.stderr
