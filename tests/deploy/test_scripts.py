"""The deploy scripts (`make kind-up`, `make kind-down`, `make deploy-tools`) are valid bash."""

import subprocess
from pathlib import Path

import pytest

from tests.deploy.sources import REPO

SCRIPTS = sorted((REPO / "scripts").glob("*.sh"))


def test_there_are_deploy_scripts() -> None:
    assert SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_deploy_script_parses(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)
