"""What the book, stream and writer-cost benchmarks share: a findings page, and CPU time.

The suite's own report (`bench/report.py`) renders its figure tables; these three write a short
page each (`bench/results-*.md`), logged line by line as they measure.
"""

import logging
import os
import time
from pathlib import Path


class Report:
    """What a benchmark found: logged as it goes, then written as a Markdown page."""

    def __init__(self, name: str) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        for noisy in ("httpx", "alembic", "betting"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._log = logging.getLogger(name)
        self._lines: list[str] = []

    def line(self, text: str) -> None:
        self._log.info(text)
        self._lines.append(text)

    def heading(self, text: str) -> None:
        self.line(f"\n## {text}\n")

    def write(self, path: Path, title: str, command: str) -> None:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        path.write_text(
            f"# {title}\n\n`{command}` on {when}, 2 shared cores, load average {load} at the "
            "end (the machine is shared: compare figures of the same run).\n\n"
            + "\n".join(self._lines)
            + "\n"
        )


def cpu_s(pid: int) -> float:
    """CPU seconds a process has used so far (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
