"""`make bench PROFILE=1`: py-spy attached to the components during chosen phases.

Each phase writes py-spy's raw stacks (one line per distinct stack, with its sample count) for
each process it watched, and a summary of where the samples fall: the functions that were
running (self) and those on the stack (inclusive), as shares of the samples taken.
"""

import logging
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

PY_SPY = Path(sys.executable).parent / "py-spy"
RATE_HZ = 100
TOP = 15
_LINE = re.compile(r" \(([^()]*):\d+\)$")


# What a sample counts: "active" threads (py-spy's default: a thread blocked inside a C call,
# such as psycopg2 waiting for Postgres, still counts), "wall" (idle threads too: where a
# function waits) or "gil" (only the thread holding the GIL: the process's Python CPU time).
Mode = Literal["active", "wall", "gil"]
MODE_FLAGS: dict[str, list[str]] = {"active": [], "wall": ["--idle"], "gil": ["--gil"]}
MODE_TEXT = {
    "active": "samples of active threads, blocked C calls included",
    "wall": "wall-clock samples of every thread, idle included",
    "gil": "samples of the thread holding the GIL: Python CPU time",
}


@dataclass
class Profile:
    phase: str
    process: str
    seconds: float
    mode: Mode
    stacks: Counter[str]

    @property
    def samples(self) -> int:
        return sum(self.stacks.values())


def _function(frame: str) -> str:
    """`name (path/file.py:12)` → `name (file.py)`: one entry per function, not per line."""
    match = _LINE.search(frame)
    if match is None:
        return frame
    return f"{frame[: match.start()]} ({Path(match.group(1)).name})"


def read_raw(path: Path) -> Counter[str]:
    stacks: Counter[str] = Counter()
    if path.exists():
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[stack] += int(count)
    return stacks


def shares(profile: Profile) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The top functions by self and by inclusive share of the samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, count in profile.stacks.items():
        frames = [_function(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    total = profile.samples or 1
    return (
        [(name, 100 * n / total) for name, n in own.most_common(TOP)],
        [(name, 100 * n / total) for name, n in inclusive.most_common(TOP)],
    )


def summary(profile: Profile) -> str:
    own, inclusive = shares(profile)
    # Samples per possible sample: threads sampled at once, on average (for "gil", the share
    # of the time the process ran Python).
    density = profile.samples / (profile.seconds * RATE_HZ)
    lines = [
        f"### {profile.phase}: {profile.process}",
        "",
        f"{profile.samples} samples over {profile.seconds:.1f} s, {density:.2f} per tick "
        f"({MODE_TEXT[profile.mode]}).",
        "",
        "| self % | function | | inclusive % | function |",
        "|---:|---|---|---:|---|",
    ]
    for (a, a_share), (b, b_share) in zip(own, inclusive, strict=False):
        lines.append(f"| {a_share:.1f} | `{a}` | | {b_share:.1f} | `{b}` |")
    return "\n".join(lines) + "\n"


class Profiler:
    """Records phases with py-spy into `directory`; `phase()` is a no-op when disabled."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.profiles: list[Profile] = []
        self._recordings = 0
        if directory is not None:
            if not PY_SPY.exists():
                raise SystemExit("PROFILE=1 needs py-spy in the virtualenv: `make venv`")
            directory.mkdir(parents=True, exist_ok=True)
            for stale in directory.glob("*.txt"):  # raw stacks of an earlier run
                stale.unlink()

    def phase(
        self, name: str, pids: dict[str, int], mode: Mode = "active"
    ) -> AbstractContextManager[None]:
        if self.directory is None:
            return nullcontext()
        return self._record(self.directory, name, pids, mode)

    @contextmanager
    def _record(
        self, directory: Path, name: str, pids: dict[str, int], mode: Mode
    ) -> Iterator[None]:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self._recordings += 1
        slug = f"{slug}-{self._recordings:02d}"
        spies: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        for process, pid in pids.items():
            raw = directory / f"{slug}.{process}.txt"
            args = [str(PY_SPY), "record", "--pid", str(pid), "--rate", str(RATE_HZ)]
            args += ["--format", "raw", "--nonblocking", "--output", str(raw), *MODE_FLAGS[mode]]
            spies[process] = (
                subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                raw,
            )
        started = time.monotonic()
        try:
            yield
        finally:
            seconds = time.monotonic() - started
            for spy, _ in spies.values():
                spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            for process, (spy, raw) in spies.items():
                spy.wait(timeout=60)
                self._merge(Profile(name, process, seconds, mode, read_raw(raw)))

    def _merge(self, new: Profile) -> None:
        """A phase recorded several times (each step, each round) is summarised as one."""
        for profile in self.profiles:
            if (profile.phase, profile.process) == (new.phase, new.process):
                profile.seconds += new.seconds
                profile.stacks.update(new.stacks)
                return
        self.profiles.append(new)

    def write_summary(self) -> None:
        if self.directory is None:
            return
        text = ["# Where the time goes (py-spy)", ""]
        text += [summary(p) for p in self.profiles]
        (self.directory / "summary.md").write_text("\n".join(text))
