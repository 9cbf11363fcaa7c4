"""The import-layer contract that `make check` runs (`lint-imports`) covers every package the
project installs, so a new top-level package cannot sit outside the layers unnoticed."""

import tomllib
from pathlib import Path

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())


def test_every_installed_package_is_in_exactly_one_layer() -> None:
    installed = {
        pattern.removesuffix("*")
        for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    linter = PYPROJECT["tool"]["importlinter"]
    assert set(linter["root_packages"]) == installed
    (contract,) = linter["contracts"]
    assert contract["type"] == "layers"
    in_layers = [name.strip() for layer in contract["layers"] for name in layer.split("|")]
    assert sorted(in_layers) == sorted(installed)
    # Top to bottom: the launcher over the entrypoints over the shared package.
    assert in_layers[0] == "launcher" and in_layers[-1] == "betting"
