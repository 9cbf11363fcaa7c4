"""The system's processes (`betting <command>`), started and stopped for `make run` and the
tests. Each runs in its own session: a Ctrl-C at the terminal reaches only the one that started
it, which then stops them in order."""

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


class OwnProcess:
    """What a wrapper of one child process (`_process`) tells about it."""

    _process: subprocess.Popen[bytes] | None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None


@dataclass
class Component(OwnProcess):
    """One of the system's processes (`betting <command>`), started in its own session."""

    command: str
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> "Component":
        out = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        self._process = subprocess.Popen(
            [str(Path(sys.executable).parent / "betting"), self.command],
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
        return self

    def signal(self, signum: int) -> None:
        if self.running():
            assert self._process is not None
            self._process.send_signal(signum)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout_s`; return the exit code."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        return self._process.returncode
