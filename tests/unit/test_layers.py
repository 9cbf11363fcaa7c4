"""The import contracts that `make check` runs (`lint-imports`): the layers cover every package
the project installs, so a new top-level package cannot sit outside them unnoticed; and the bet
maker imports nothing of Kafka, which a fresh interpreter confirms."""

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
LINTER = PYPROJECT["tool"]["importlinter"]
KAFKA = ("confluent_kafka", "quixstreams")


def contract(kind: str) -> dict[str, Any]:
    (found,) = [c for c in LINTER["contracts"] if c["type"] == kind]
    assert isinstance(found, dict)
    return found


def test_every_installed_package_is_in_exactly_one_layer() -> None:
    installed = {
        pattern.removesuffix("*")
        for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert set(LINTER["root_packages"]) == installed
    layers = contract("layers")
    in_layers = [name.strip() for layer in layers["layers"] for name in layer.split("|")]
    assert sorted(in_layers) == sorted(installed)
    # Top to bottom: the launcher over the entrypoints over the shared package.
    assert in_layers[0] == "launcher" and in_layers[-1] == "betting"


def test_the_bet_maker_may_import_no_kafka_client() -> None:
    forbidden = contract("forbidden")
    assert forbidden["source_modules"] == ["gateway.bet_maker"]
    assert {*KAFKA, "gateway.producer"} <= set(forbidden["forbidden_modules"])
    assert LINTER["include_external_packages"] is True  # else third-party names are ignored


def _loaded(module: str) -> list[str]:
    """The Kafka modules loaded once `betting`'s CLI and `module` are imported, fresh."""
    script = (
        "import importlib, sys; import launcher.cli; importlib.import_module(sys.argv[1]); "
        "print('\\n'.join(m for m in sys.modules if m.split('.')[0] in sys.argv[2:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, module, *KAFKA], capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def test_the_bet_maker_loads_no_kafka_module_and_the_line_provider_does() -> None:
    assert _loaded("gateway.bet_maker") == []
    assert "confluent_kafka" in _loaded("gateway.line_provider")  # the check sees one
