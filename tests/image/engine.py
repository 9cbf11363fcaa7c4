"""A Docker engine, a base image and the wheels for `make image-test`, made from what these
machines can reach: Debian's packages and the Python package index, but no image registry.

- The engine: one already answering is used as it is; otherwise, as root, Debian's `docker.io`
  is installed if missing and `dockerd` started for the session (and stopped after it).
- The base image: `BETTING_IMAGE_BASE` if set (e.g. `python:3.11-slim` where a registry is
  reachable); otherwise a Debian root filesystem made with debootstrap and `docker import`ed.
  Its tarball is cached under `BETTING_IMAGE_CACHE` (default `~/.cache/betting-image`).
- The wheels: downloaded on the host into `wheelhouse/` (git-ignored), because HTTPS from
  inside a container fails certificate checks here; the build installs from them only.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO / "wheelhouse"
# The project's build backend (pyproject [build-system] wants setuptools>=68), pinned, so the
# build can make the project's own wheel without an index.
BUILD_BACKEND = "setuptools==80.9.0"
SUITE = "bookworm"  # Debian 12: its python3 is 3.11, the version the project supports.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# The local base's name says what it is made of, so a change of packages makes a new one.
LOCAL_BASE = (
    f"betting-base:{SUITE}-" + hashlib.sha256(" ".join(BASE_PACKAGES).encode()).hexdigest()[:8]
)
# What the base does not need at run time: package caches and documentation.
TRIM = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale")


class Unavailable(Exception):
    """No Docker engine can be had here; `str(error)` says why."""


def run(
    *args: str,
    timeout: float = 900,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, raising with its output when it fails."""
    result = subprocess.run(
        list(args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


def apt_install(*packages: str) -> None:
    """Install Debian packages; refresh the package lists once if the first try fails."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        run("apt-get", "install", "-y", "--no-install-recommends", *packages, env=env)
    except RuntimeError:
        run("apt-get", "update", env=env)
        run("apt-get", "install", "-y", "--no-install-recommends", *packages, env=env)


def start_engine(workdir: Path) -> subprocess.Popen[bytes] | None:
    """Make sure an engine answers; return the `dockerd` started for it, if one was."""
    if engine_answers():
        return None
    if os.geteuid() != 0:
        raise Unavailable(
            "no Docker engine answers and only root can install and start one "
            "(run as root, or start an engine and make `docker info` work)"
        )
    if shutil.which("dockerd") is None:
        apt_install("docker.io")
    log = (workdir / "dockerd.log").open("wb")
    dockerd = subprocess.Popen(
        ["dockerd", "--pidfile", str(workdir / "dockerd.pid")], stdout=log, stderr=log
    )
    deadline = time.monotonic() + 60
    while not engine_answers():
        if dockerd.poll() is not None or time.monotonic() > deadline:
            stop_engine(dockerd)
            tail = (workdir / "dockerd.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"dockerd did not start:\n{tail}")
        time.sleep(0.5)
    return dockerd


def stop_engine(dockerd: subprocess.Popen[bytes]) -> None:
    dockerd.terminate()
    try:
        dockerd.wait(timeout=30)
    except subprocess.TimeoutExpired:
        dockerd.kill()
        dockerd.wait()


def cache_dir() -> Path:
    path = Path(os.environ.get("BETTING_IMAGE_CACHE") or Path.home() / ".cache" / "betting-image")
    path.mkdir(parents=True, exist_ok=True)
    return path


def image_exists(name: str) -> bool:
    found = subprocess.run(
        ["docker", "image", "inspect", name], capture_output=True, timeout=30, check=False
    )
    return found.returncode == 0


def base_image() -> str:
    """The base the Dockerfile builds on: `BETTING_IMAGE_BASE`, or the local Debian one."""
    given = os.environ.get("BETTING_IMAGE_BASE")
    if given:
        return given
    if not image_exists(LOCAL_BASE):
        tarball = cache_dir() / f"{LOCAL_BASE.replace(':', '_')}.tar"
        if not tarball.is_file():
            _debootstrap(tarball)
        run("docker", "import", str(tarball), LOCAL_BASE)
    return LOCAL_BASE


def _debootstrap(tarball: Path) -> None:
    if shutil.which("debootstrap") is None:
        apt_install("debootstrap")
    with tempfile.TemporaryDirectory(prefix="betting-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run(
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            SUITE,
            str(rootfs),
        )
        for path in TRIM:
            shutil.rmtree(rootfs / path, ignore_errors=True)
        partial = tarball.with_suffix(".partial")
        run("tar", "-C", str(rootfs), "-cf", str(partial), ".")
        partial.rename(tarball)  # only a whole tarball is ever found in the cache


def download_wheels() -> None:
    """Every runtime dependency of the project (no extras), pinned, as wheels in wheelhouse/;
    pip skips those already there."""
    run(
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--dest",
        str(WHEELHOUSE),
        "-c",
        str(REPO / "constraints.txt"),
        str(REPO),
        BUILD_BACKEND,
    )
    # pip download also leaves the project's own source there; the build copies it anyway.
    for leftover in WHEELHOUSE.glob("betting-*"):
        leftover.unlink()
