"""The servers the book and stream benchmarks run against: Postgres, the broker, setup and
one gateway process, on free ports, Postgres durable, the gateway on 127.0.0.1 only.

Kept apart from the settlement suite's stack module so the two can be merged by moving
code, not by reconciling edits; load only ever goes to 127.0.0.1.
"""

import logging
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from sqlalchemy.engine import make_url

from betting.db import get_engine
from betting.settings import get_settings
from betting.setup import prepare
from launcher import local


@dataclass(frozen=True)
class Servers:
    database_url: str
    gateway_url: str
    gateway_pid: int
    workdir: Path

    def connect(self) -> "psycopg2.extensions.connection":
        """A direct connection to the database (autocommit off)."""
        url = make_url(self.database_url)
        return psycopg2.connect(
            host=url.host, port=url.port, user=url.username, password=url.password,
            dbname=url.database,
        )  # fmt: skip


def _wait_until_ready(url: str, gateway: local.Component, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not gateway.running():
            raise RuntimeError("the gateway stopped; see its log")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the gateway at {url} did not become ready")


@contextmanager
def servers(*, gateway: bool = True, **gateway_env: str) -> Iterator[Servers]:
    """Everything the benchmarks need; stopped on exit (logs kept if something failed)."""
    workdir = Path(tempfile.mkdtemp(prefix="betting-bench-", dir="/var/tmp"))
    workdir.chmod(0o755)  # the database server may run as another user (we may be root)
    postgres = local.Postgres(workdir / "postgres", local.free_port())
    broker: local.Broker | None = None
    component: local.Component | None = None
    failed = False
    try:
        postgres.start()
        broker = local.Broker(local.free_port()).start()
        port = local.free_port()
        env = {
            "BETTING_DATABASE_URL": postgres.url,
            "BETTING_KAFKA_BROKERS": broker.address,
            "BETTING_GATEWAY_PORT": str(port),
            "BETTING_GATEWAY_HOST": "127.0.0.1",
            "BETTING_LOG_LEVEL": "WARNING",
        }
        os.environ.update(env)
        get_settings.cache_clear()
        get_engine.cache_clear()
        prepare()
        url = f"http://127.0.0.1:{port}"
        if gateway:
            component = local.Component(
                "gateway", env={**env, **gateway_env}, log_path=workdir / "gateway.log"
            ).start()
            _wait_until_ready(url, component)
        yield Servers(postgres.url, url, component.pid if component else 0, workdir)
    except BaseException:
        failed = True
        raise
    finally:
        if component is not None:
            component.stop()
        get_engine().dispose()
        if broker is not None:
            broker.stop()
        postgres.stop()
        if failed:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def rss_mb(pid: int) -> float:
    """A process's resident memory now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """CPU seconds a process has used so far (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0-100): a value that was actually measured."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


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
