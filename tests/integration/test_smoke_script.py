"""The smoke test that `make kind-up` runs passes against a real running system: through one
address (the dev front, as through the Ingress), and with each server at its own address (as
through two port-forwards)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from betting.auth import Role, mint_token
from tests.conftest import Stack

pytestmark = pytest.mark.e2e

SMOKE = Path(__file__).resolve().parents[2] / "launcher" / "smoke.py"


def run_smoke(*api: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(SMOKE),
            *api,
            "--operator-token",
            mint_token("smoke-operator", Role.OPERATOR),
            "--player-token",
            mint_token("smoke-player", Role.PLAYER),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.usefixtures("functions")
def test_kind_smoke_script_plays_a_match_through_one_address(front_url: str) -> None:
    result = run_smoke("--api", front_url)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.usefixtures("functions")
def test_kind_smoke_script_plays_a_match_against_each_server_at_its_own_address(
    line_provider_url: str, bet_maker_url: str
) -> None:
    result = run_smoke("--api", line_provider_url, "--bets-api", bet_maker_url)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.usefixtures("functions")
def test_betting_smoke_mints_its_own_tokens_and_plays_a_match(
    stack: Stack, line_provider_url: str, bet_maker_url: str
) -> None:
    """What the chart's `helm test` pod runs: only the auth key in its environment."""
    betting = str(Path(sys.executable).parent / "betting")
    result = subprocess.run(
        [betting, "smoke", "--api", line_provider_url, "--bets-api", bet_maker_url],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke test passed" in result.stdout
