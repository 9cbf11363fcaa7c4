"""Gateway throughput under `wrk`, against a FastAPI hello world loaded the same way.

Each round runs the hello world, then each gateway call, for the same duration with the same
connections, so the machine's noise falls on both sides. Figures are medians over rounds.
"""

import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import api
from bench.figures import Figure, Results
from bench.profile import Profiler
from bench.stack import Stack, free_port
from betting.auth import Role

log = logging.getLogger(__name__)

WRK_DIR = Path(__file__).resolve().parent / "wrk"
CONNECTIONS = 16
THREADS = 1  # one load thread leaves the other core to the server
PLAYERS = 10
TARGET_POST_RATIO = 0.35


@dataclass(frozen=True)
class Run:
    requests: int
    duration_us: int
    non2xx: int
    socket_errors: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int

    @property
    def rate(self) -> float:
        return self.requests / (self.duration_us / 1e6)


def ensure_wrk() -> str:
    """The `wrk` binary; as root, installed from Debian's packages when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(
            "the bench needs wrk (an HTTP load generator): install it, e.g. "
            "`sudo apt-get install wrk` on Debian or Ubuntu, then run `make bench` again"
        )
    log.info("installing wrk with apt-get")
    install = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    if subprocess.run(install, check=False, capture_output=True).returncode != 0:
        # A fresh machine may not have the package lists yet.
        subprocess.run(["apt-get", "update"], check=True, capture_output=True)
        subprocess.run(install, check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get installed wrk but it is not on PATH")
    return found


def _wrk(
    wrk: str, url: str, seconds: float, script: str, env: dict[str, str], *headers: str
) -> Run:
    args = [
        wrk,
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
    ]
    for header in headers:
        args += ["-H", header]
    args += ["-s", str(WRK_DIR / script), url]
    out = subprocess.run(
        args, check=True, capture_output=True, text=True, env={**os.environ, **env}
    ).stdout
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    return Run(**json.loads(line.removeprefix("BENCH ")))


class HelloWorld:
    """The baseline server as its own process, on a free port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self._log = open(workdir / "hello.log", "ab")  # noqa: SIM115 (closed in stop)
        env = {
            **os.environ,
            "BETTING_BET_MAKER_PORT": str(self.port),
            "BETTING_HTTP_HOST": "127.0.0.1",
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.hello"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bets"

    def wait_ready(self, body: dict[str, str]) -> None:
        def answers() -> bool:
            if self._process.poll() is not None:
                raise RuntimeError("the hello world stopped")
            try:
                return httpx.post(self.url, json=body, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        api.wait_until(answers, 30, "the hello world", interval_s=0.1)

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
        self._log.close()


def run(
    stack: Stack,
    client: httpx.Client,
    results: Results,
    *,
    seconds: float,
    rounds: int,
    page_player: str,
    profiler: Profiler,
) -> None:
    """Alternate the hello world and the gateway's calls; add throughput and latency figures."""
    wrk = ensure_wrk()
    operator = api.bearer("bench-operator", Role.OPERATOR)
    event_id = api.create_event(client, operator)
    api.wait_event(client, event_id)
    players = [api.bearer(f"load-player-{p}", Role.PLAYER) for p in range(PLAYERS)]
    post_env = {
        "BENCH_EVENT_ID": event_id,
        "BENCH_TOKENS": ",".join(h["Authorization"].removeprefix("Bearer ") for h in players),
    }
    page_auth = "Authorization: " + api.bearer(page_player, Role.PLAYER)["Authorization"]
    hello = HelloWorld(stack.workdir)
    try:
        hello.wait_ready({"event_id": event_id, "market": "draw", "amount": "1.00"})
        calls = {
            "hello world POST": (hello.url, "post_bet.lua", post_env, ()),
            "POST /bets": (f"{stack.bets_url}/bets", "post_bet.lua", post_env, ()),
            "GET /bets (a player's page)": (
                f"{stack.bets_url}/bets",
                "summary.lua",
                {},
                (page_auth,),
            ),
            "GET /events?open=true": (
                f"{stack.events_url}/events?open=true",
                "summary.lua",
                {},
                (),
            ),
        }
        for url, script, env, headers in calls.values():  # warm-up, not counted
            _wrk(wrk, url, 1, script, env, *headers)
        runs: dict[str, list[Run]] = {name: [] for name in calls}
        for round_ in range(rounds):
            for name, (url, script, env, headers) in calls.items():
                pids = {"bet-maker": stack.pid("bet-maker")} if name == "POST /bets" else {}
                # Python CPU (what the GIL serialises) and where the threads spend their time.
                with (
                    profiler.phase("gateway: POST /bets load, Python CPU", pids, "gil"),
                    profiler.phase("gateway: POST /bets load, threads", pids, "active"),
                ):
                    runs[name].append(_wrk(wrk, url, seconds, script, env, *headers))
                last = runs[name][-1]
                log.info(
                    "round %d %-28s %7.0f req/s p50 %6.1f ms p99 %6.1f ms non-2xx %d",
                    round_ + 1,
                    name,
                    last.rate,
                    last.p50_us / 1000,
                    last.p99_us / 1000,
                    last.non2xx,
                )
            stack.check_running()
    finally:
        hello.stop()
    _add_figures(results, runs)


def _median(runs: list[Run], value: str) -> float:
    return float(statistics.median(getattr(r, value) for r in runs))


def _add_figures(results: Results, runs: dict[str, list[Run]]) -> None:
    hello = runs.pop("hello world POST")
    hello_rate = _median(hello, "rate")
    for name, measured in runs.items():
        rate = _median(measured, "rate")
        failures = sum(r.non2xx + r.socket_errors for r in measured)
        is_post = name.startswith("POST")
        results.add(
            Figure(
                "gateway",
                f"{name}: req/s ({CONNECTIONS} connections, {failures} non-2xx/errors)",
                rate,
                "req/s",
                hello_rate,
                "hello world req/s",
                f"≥ {TARGET_POST_RATIO}×, no non-2xx" if is_post else "",
                rate / hello_rate >= TARGET_POST_RATIO and failures == 0 if is_post else None,
            )
        )
        for q in ("p50", "p99"):
            results.add(
                Figure(
                    "gateway",
                    f"{name}: {q} latency",
                    _median(measured, f"{q}_us") / 1000,
                    "ms",
                    _median(hello, f"{q}_us") / 1000,
                    f"hello world {q}",
                )
            )
    results.samples["gateway"] = {
        name: [r.__dict__ for r in measured] for name, measured in {**runs, "hello": hello}.items()
    }
