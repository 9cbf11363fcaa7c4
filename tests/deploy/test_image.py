"""The Dockerfile: a small non-root final stage that runs `betting`, with everything the commands
need in the places they look for it."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from launcher.cli import COMMANDS
from tests.deploy.sources import DOCKERFILE, REPO
from tests.deploy.test_commands import _BLOCKER, _dev_only_modules


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in _instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def _final() -> list[tuple[str, str]]:
    return _stages()[-1]


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def test_builder_installs_the_project_with_its_constraints() -> None:
    stages = _stages()
    assert len(stages) >= 2
    runs = " ".join(rest for keyword, rest in stages[0] if keyword == "RUN")
    assert "pip install -c constraints.txt ." in runs


def test_final_stage_runs_betting_as_a_non_root_user() -> None:
    final = dict(_final())
    assert json.loads(final["ENTRYPOINT"]) == ["betting"]
    (default,) = json.loads(final["CMD"])
    assert default in COMMANDS
    assert final["USER"].split(":")[0] in {"10001", "${UID}"}
    assert "ARG UID=10001" in DOCKERFILE.read_text()
    assert final["EXPOSE"] == "8000"
    assert final["WORKDIR"] == "/app"
    env = _env(_final())
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONPATH"] == "/app"


def test_final_stage_has_no_compilers_or_package_installs() -> None:
    runs = " ".join(rest for keyword, rest in _final() if keyword == "RUN")
    assert not re.search(r"apt-get|apk |pip install|gcc|build-essential|make ", runs)
    assert _final()[0][1] == "python:3.11-slim"
    assert _stages()[0][0][1] == "python:3.11-slim AS builder"


def _copies() -> list[tuple[list[str], str]]:
    copies = []
    for keyword, rest in _final():
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, destination = rest.split()
            copies.append((sources, destination))
    return copies


def test_final_stage_holds_only_the_venv_and_the_app() -> None:
    copied = {s.rstrip("/") for sources, _ in _copies() for s in sources}
    assert copied == {"alembic.ini", "migrations", "betting", "gateway", "functions", "launcher"}
    from_builder = [
        rest for keyword, rest in _final() if keyword == "COPY" and rest.startswith("--from")
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
    needed = {s.rstrip("/") for stage in _stages() for keyword, rest in stage if keyword == "COPY"
              and not rest.startswith("--from") for s in rest.split()[:-1]}  # fmt: skip
    assert needed <= allowed


def test_migrations_run_from_the_images_layout(tmp_path: Path) -> None:
    """Lay out /app as the final stage's COPY lines do, then let Alembic write the migration SQL
    (offline: no database) from there, with the image's dependencies only."""
    app = tmp_path / "app"
    for sources, destination in _copies():
        # Relative to WORKDIR /app: `COPY alembic.ini ./`, `COPY betting/ betting/`.
        target = app / destination.removeprefix("./")
        for name in sources:
            if (REPO / name).is_dir():
                ignore = shutil.ignore_patterns("__pycache__")
                shutil.copytree(REPO / name, target, ignore=ignore)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO / name, target / name)
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
