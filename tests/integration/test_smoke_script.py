"""The smoke test that `make kind-up` runs passes against a real running system."""

import subprocess
import sys
from pathlib import Path

import pytest

from betting.auth import Role, mint_token
from tests.integration.conftest import Functions

pytestmark = pytest.mark.e2e

SMOKE = Path(__file__).resolve().parents[2] / "scripts" / "smoke.py"


def test_kind_smoke_script_plays_a_match_against_the_running_system(
    gateway_url: str, functions: Functions
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(SMOKE),
            "--api",
            gateway_url,
            "--operator-token",
            mint_token("smoke-operator", Role.OPERATOR),
            "--player-token",
            mint_token("smoke-player", Role.PLAYER),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
