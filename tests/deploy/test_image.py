"""The Dockerfile: a small non-root final stage that runs `betting`, with everything the commands
need in the places they look for it."""

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from betting.settings import Settings
from tests.deploy.sources import (
    DOCKERFILE,
    IMAGE,
    REPO,
    Instruction,
    compose,
    context_copies,
    copied_files,
    dockerfile_stages,
    final_stage,
    in_build_context,
    lay_out_image,
    platform_containers,
    source,
)
from tests.deploy.test_commands import _BLOCKER, _dev_only_modules


def _env(stage: list[Instruction]) -> dict[str, str]:
    env = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def test_builder_installs_the_project_with_its_constraints() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    runs = " ".join(rest for keyword, rest in stages[0] if keyword == "RUN")
    assert "pip install ${PIP_OPTIONS} -c constraints.txt ." in runs
    # Without build arguments pip uses its index: the extra options are empty by default.
    assert ("ARG", 'PIP_OPTIONS=""') in stages[0]


def test_final_stage_runs_betting_as_a_non_root_user() -> None:
    final = dict(final_stage())
    assert json.loads(final["ENTRYPOINT"]) == ["betting"]
    # No default component: without arguments the image lists them.
    assert json.loads(final["CMD"]) == ["--help"]
    assert final["USER"].split(":")[0] in {"10001", "${UID}"}
    assert "ARG UID=10001" in DOCKERFILE.read_text()
    defaults = Settings()
    assert final["EXPOSE"].split() == [
        str(defaults.line_provider_port),
        str(defaults.bet_maker_port),
    ]
    assert final["WORKDIR"] == "/app"
    env = _env(final_stage())
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONPATH"] == "/app"


def test_final_stage_has_no_compilers_or_package_installs() -> None:
    runs = " ".join(rest for keyword, rest in final_stage() if keyword == "RUN")
    assert not re.search(r"apt-get|apk |pip install|gcc|build-essential|make ", runs)
    # Both stages on one base, a build argument whose default is the official slim image.
    assert final_stage()[0][1] == "${BASE_IMAGE}"
    assert dockerfile_stages()[0][0][1] == "${BASE_IMAGE} AS builder"
    before_from = DOCKERFILE.read_text().split("\nFROM ", 1)[0]
    assert "\nARG BASE_IMAGE=python:3.11-slim\n" in before_from


def test_final_stage_holds_only_the_venv_and_the_app() -> None:
    copied = {s.rstrip("/") for sources, _ in context_copies(final_stage()) for s in sources}
    assert copied == {"alembic.ini", "migrations", "betting", "gateway", "functions", "launcher"}
    from_builder = [
        rest for keyword, rest in final_stage() if keyword == "COPY" and rest.startswith("--from")
    ]
    assert from_builder == ["--from=builder /opt/venv /opt/venv"]


def test_dockerignore_lets_in_only_what_is_copied() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    needed = {
        source.rstrip("/*")
        for stage in dockerfile_stages()
        for sources, _ in context_copies(stage)
        for source in sources
    }
    assert needed <= allowed


def test_migrations_run_from_the_images_layout(tmp_path: Path) -> None:
    """Lay out /app as the final stage's COPY lines do, then let Alembic write the migration SQL
    (offline: no database) from there, with the image's dependencies only."""
    app = lay_out_image(tmp_path / "app")
    script = (
        "from pathlib import Path; import betting; from alembic import command;"
        "from alembic.config import Config;"
        # betting.setup.migrate() finds alembic.ini next to the package, as here.
        "ini = Path(betting.__file__).resolve().parent.parent / 'alembic.ini';"
        "assert ini.is_file(), ini;"
        "command.upgrade(Config(str(ini)), 'head', sql=True)"
    )
    blocked = ",".join(sorted(_dev_only_modules()))
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKER + "\n" + script, blocked],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(app)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CREATE TABLE" in result.stdout


# --- no dev tooling in the image ----------------------------------------------------------------


def test_the_image_carries_no_dev_tooling() -> None:
    """launcher/local (`betting dev`, the tests' servers) reaches neither stage: .dockerignore
    keeps it out of the build context, so the builder cannot install it either."""
    for stage in dockerfile_stages():
        copied = {file.relative_to(REPO).as_posix() for file in copied_files(stage).values()}
        assert "launcher/cli.py" in copied  # the command is there...
        assert not {f for f in copied if f.startswith("launcher/local/")}  # ...its dev tools not
    # The rule that decides it, and that it would see a leak.
    assert (REPO / "launcher" / "local" / "servers.py").is_file()
    assert not in_build_context("launcher/local/servers.py")
    assert in_build_context("launcher/cli.py")


def test_the_image_installs_no_dev_dependency() -> None:
    """The one pip install is the project itself, pinned, without extras or other packages."""
    installs = [
        re.findall(r"pip install ([^&;|]*)", rest)
        for stage in dockerfile_stages()
        for keyword, rest in stage
        if keyword == "RUN"
    ]
    assert [args.split() for found in installs for args in found] == [
        ["${PIP_OPTIONS}", "-c", "constraints.txt", "."]
    ]


def test_betting_dev_in_the_image_says_in_one_line_that_it_is_not_there(tmp_path: Path) -> None:
    app = lay_out_image(tmp_path / "app")
    assert (app / "launcher" / "cli.py").is_file()
    assert not (app / "launcher" / "local").exists()
    script = "from launcher.cli import main; main(['dev'])"
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKER + "\n" + script, ",".join(sorted(_dev_only_modules()))],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(app)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        "betting dev: the local dev tooling is not installed here (launcher.local is missing); "
        "run it from a checkout: make run"
    ]


def test_compose_k8s_and_the_chart_name_one_image_the_charts_app_version() -> None:
    """What `helm install`, `kubectl apply -k` and `docker compose` pull is what the image test
    and `make kind-up` build: betting:<appVersion>, which is also the project's version."""
    chart = yaml.safe_load((REPO / "helm" / "betting" / "Chart.yaml").read_text())
    expected = f"betting:{chart['appVersion']}"
    assert expected == IMAGE
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    for name in ("chart-default", "kustomize-base", "kustomize-kind"):
        images = {container["image"] for _, container in platform_containers(source(name))}
        assert images == {expected}, name
    ours = {n: s.get("image") for n, s in compose()["services"].items() if "build" in s}
    assert set(ours.values()) == {expected}
    assert {"setup", "line-provider", "bet-maker", "event-writer"} <= set(ours)
    assert f"docker build -t {expected} ." in (REPO / "README.md").read_text()
