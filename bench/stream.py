"""`python -m bench.stream`: 1,000 subscribers of the bet stream on one bet maker process.

Against the local stack (`bench/stack.py`: the bet maker on 127.0.0.1, a durable Postgres):

1. A client process opens 1,000 SSE connections, one per player, each with one bet on a
   live event, and waits until every stream says it is live.
2. Rounds of the bet writer's own statement (`apply_bet_updates`), each changing all 1,000
   bets in one transaction, every 0.5 s. Each change's delivery latency is the time a
   client read its event less the time the transaction committed (same clock, same
   machine): p50, p99 and max over every delivery, and deliveries missing.
3. The same rounds again while 50 operators watch every bet and stop reading: each must be
   dropped with the final comment once 1,000 changes wait for it, and the gateway's memory
   must stay bounded (peak RSS, sampled every 50 ms, beside the idle figures).

Writes bench/results-stream.md. Every loop is bounded in count and time.
"""

import argparse
import asyncio
import json
import math
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text

from bench.figures import Figure, Results, percentile
from bench.memory import PeakRss, rss_mb
from bench.pages import Report, cpu_s
from bench.profile import Profiler
from bench.stack import Stack, local_stack
from betting.auth import Role, mint_token
from betting.db import session_scope
from betting.domain import BetState
from betting.messages import BetScored, encode
from betting.settings import get_settings
from betting.streams import LogRecord

HERE = Path(__file__).resolve().parent
LIVE, TOO_SLOW = b": live", b": too slow"


# --- The clients (a process of their own) ---------------------------------------------


@dataclass
class Received:
    live: int = 0
    dropped: int = 0
    ended: int = 0
    # xid → the times (time.time()) its changes were read
    times: dict[int, list[float]] = field(default_factory=dict)


async def _client(
    host: str, port: int, token: str, got: Received, all_live: asyncio.Event, expected: int,
    resume: asyncio.Event | None,
) -> None:  # fmt: skip
    """One subscriber; `resume` given, it stops reading once live until that is set."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if resume is not None:
        # A small receive window, set before connecting so it is the one negotiated: a
        # client that stops reading is behind at once, not after megabytes.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=2**20)
    writer.write(
        f"GET /bets/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    while (line := await reader.readline()) not in (b"\r\n", b""):
        pass  # the status line and the headers
    pending = b""
    while data := await reader.read(65536):
        now = time.time()
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            if line.startswith(b"id: "):
                got.times.setdefault(int(line[4:].split(b"-")[0]), []).append(now)
            elif line.startswith(LIVE):
                got.live += 1
                if got.live == expected:
                    all_live.set()
                if resume is not None:
                    await resume.wait()  # stop reading: the gateway must drop us
            elif line.startswith(TOO_SLOW):
                got.dropped += 1
    got.ended += 1
    writer.close()


async def _clients(url: str, tokens: list[str], slow: bool) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    got, all_live, resume = Received(), asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(
            _client(host, port, token, got, all_live, len(tokens), resume if slow else None)
        )
        for token in tokens
    ]
    await asyncio.wait_for(all_live.wait(), 120)
    print("LIVE", flush=True)
    # The driver says when to stop reading: a line on stdin. Slow clients then read on, to
    # see the comment that dropped them and the end of their streams.
    await asyncio.to_thread(sys.stdin.readline)
    resume.set()
    _, pending = await asyncio.wait(tasks, timeout=60 if slow else 1)
    for task in pending:
        task.cancel()
    return {"live": got.live, "dropped": got.dropped, "ended": got.ended, "times": got.times}


def clients_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream clients")
    parser.add_argument("--url", required=True)
    parser.add_argument("--tokens", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--slow", action="store_true")
    args = parser.parse_args(argv)
    tokens = args.tokens.read_text().split()
    args.out.write_text(json.dumps(asyncio.run(_clients(args.url, tokens, args.slow))))


# --- The driver -----------------------------------------------------------------------


class Clients:
    """A client process: started, told when to stop, and what it read."""

    def __init__(self, stack: Stack, tokens: list[str], name: str, slow: bool) -> None:
        self._out = stack.workdir / f"{name}.json"
        token_file = stack.workdir / f"{name}.tokens"
        token_file.write_text("\n".join(tokens))
        command = [sys.executable, "-m", "bench.stream", "clients", "--url", stack.bets_url,
                   "--tokens", str(token_file), "--out", str(self._out)]  # fmt: skip
        self._process = subprocess.Popen(
            [*command, *(["--slow"] if slow else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self._process.stdout is not None
        self.pid = self._process.pid
        line = self._process.stdout.readline()  # bounded by the clients' own 120 s
        if line.strip() != "LIVE":
            raise RuntimeError(f"{name}: the streams did not all go live")

    def finish(self) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write("stop\n")
        self._process.stdin.flush()
        self._process.wait(timeout=120)
        result: dict[str, Any] = json.loads(self._out.read_text())
        return result


def change_all(event: uuid.UUID, bets: list[uuid.UUID], version: int) -> tuple[int, float]:
    """One bet-writer transaction changing every bet; its xid and when it committed."""
    from functions.bet_writer.apply import apply_bet_updates

    state = BetState.WINNING if version % 2 else BetState.LOSING
    records = [
        LogRecord(0, n, int(time.time() * 1000), str(bet),
                  encode(BetScored(bet_id=bet, event_id=event, state=state, version=version)))
        for n, bet in enumerate(bets)
    ]  # fmt: skip
    with session_scope() as session:
        session.execute(
            text("UPDATE events SET version = :v, score_version = :v WHERE id = :id"),
            {"v": version, "id": event},
        )
    with session_scope() as session:
        assert apply_bet_updates(session=session, topic="bets.state", records=records) == []
        xid = int(session.execute(text("SELECT pg_current_xact_id()::text")).scalar_one())
    return xid, time.time()


def latencies(commits: dict[int, float], received: dict[str, list[float]]) -> list[float]:
    return [
        (at - commits[int(xid)]) * 1000
        for xid, times in received.items()
        if int(xid) in commits
        for at in times
    ]


def rounds(
    event: uuid.UUID, bets: list[uuid.UUID], first: int, count: int, interval_s: float
) -> dict[int, float]:
    commits: dict[int, float] = {}
    for n in range(count):
        started = time.monotonic()
        xid, at = change_all(event, bets, first + n)
        commits[xid] = at
        time.sleep(max(0.0, interval_s - (time.monotonic() - started)))
    time.sleep(2)  # the last deliveries
    return commits


@dataclass
class Measured:
    """What one run of the scenario saw (latencies in ms after the commit)."""

    subscribers: int
    slow: int
    rounds: int
    interval_s: float
    one: list[float]  # the baseline: the same rounds with one subscriber
    players: list[float]
    players_with_slow: list[float]
    expected: int  # deliveries each players' phase should have made
    rss_mb: dict[str, float]
    cpu_ms: dict[str, float]  # per round of deliveries
    live_s: float
    slow_seen: dict[str, int]


def measure(
    stack: Stack, subscribers: int, slow: int, rounds_: int, interval_s: float,
    profiler: Profiler,
) -> Measured:  # fmt: skip
    """The scenario of the module's docstring on a running stack; every loop is bounded."""
    server = stack.pid("bet-maker")
    event = uuid.uuid4()
    players = [f"player-{n:04d}" for n in range(subscribers)]
    bets = [uuid.uuid4() for _ in players]
    conn = stack.connect()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO events VALUES (%s, 'football', 'Ajax', 'PSV', now(), now(), 2, 3, "
            "4, 'active', '0-0', 0, 0, now(), now(), NULL)",
            (str(event),),
        )
        cur.executemany(
            "INSERT INTO bets VALUES (%s, %s, %s, 'team_1', 10, 2, 20, 'none', -1, now(), "
            "now(), NULL)",
            [(str(bet), player, str(event)) for bet, player in zip(bets, players, strict=True)],
        )
    conn.close()
    rss = {"idle": rss_mb(server)}
    tokens = [mint_token(player, Role.PLAYER) for player in players]

    alone = Clients(stack, tokens[:1], "one", slow=False)
    one_commits = rounds(event, bets, 1, min(rounds_, 10), interval_s)
    one = latencies(one_commits, alone.finish()["times"])
    version = 1 + min(rounds_, 10)

    started = time.monotonic()
    players_clients = Clients(stack, tokens, "players", slow=False)
    live_s = time.monotonic() - started
    rss["live"] = rss_mb(server)
    cpu = cpu_s(server), cpu_s(players_clients.pid)
    spied = {"bet-maker": server}
    with PeakRss(spied) as peak, profiler.phase("players", spied, "gil"):
        commits = rounds(event, bets, version, rounds_, interval_s)
    rss["peak"] = peak.peak_mb["bet-maker"]
    cpu_ms = {
        "bet maker": (cpu_s(server) - cpu[0]) / rounds_ * 1000,
        "clients": (cpu_s(players_clients.pid) - cpu[1]) / rounds_ * 1000,
    }

    operators = [mint_token(f"operator-{n}", Role.OPERATOR) for n in range(slow)]
    slow_clients = Clients(stack, operators, "slow", slow=True)
    with PeakRss(spied) as peak, profiler.phase("slow operators", spied, "gil"):
        commits_two = rounds(event, bets, version + rounds_, rounds_, interval_s)
    rss["peak with slow"] = peak.peak_mb["bet-maker"]
    slow_seen = slow_clients.finish()
    got = players_clients.finish()
    return Measured(
        subscribers, slow, rounds_, interval_s, one,
        latencies(commits, got["times"]), latencies(commits_two, got["times"]),
        rounds_ * subscribers, rss, cpu_ms, live_s,
        {k: slow_seen[k] for k in ("live", "dropped", "ended")},
    )  # fmt: skip


def spread(latency: list[float]) -> str:
    return (
        f"p50 {percentile(latency, 50):.0f} ms, p99 {percentile(latency, 99):.0f} ms, "
        f"max {max(latency, default=math.nan):.0f} ms"
    )


def run(stack: Stack, results: Results, *, subscribers: int, slow: int, rounds_: int) -> None:
    """The suite's section (`make bench`): the players' deliveries beside one subscriber's."""
    m = measure(stack, subscribers, slow, rounds_, 1.0, Profiler(None))
    base = "one subscriber, same rounds"
    for phase, latency in (
        ("", m.players),
        (f", {slow} slow operators dropped", m.players_with_slow),
    ):
        complete = len(latency) == m.expected
        for q in (50, 99):
            results.add(
                Figure(
                    "stream",
                    f"bet stream, {subscribers} subscribers{phase}: commit → client, p{q}"
                    f" ({len(latency)} of {m.expected} delivered)",
                    percentile(latency, q), "ms", percentile(m.one, q), base,
                    "p99 ≤ 250 ms, none missing" if q == 99 else "",
                    (percentile(latency, 99) <= 250 and complete) if q == 99 else None,
                )
            )  # fmt: skip
    # Only more changes than a queue holds can overflow it: the quick run sends too few.
    overflow = rounds_ * subscribers > get_settings().stream_queue_size
    results.add(
        Figure(
            "stream", f"bet stream: bet maker peak RSS, {subscribers} subscribers and {slow} "
            f"that stop reading ({m.slow_seen['dropped']} of them dropped)",
            m.rss_mb["peak with slow"], "MB", m.rss_mb["idle"], "idle RSS before any subscriber",
            "every one that stops reading dropped" if overflow else "",
            m.slow_seen["dropped"] == slow if overflow else None,
        )
    )  # fmt: skip
    results.notes.append(
        f"Bet stream: bet maker CPU per round of {subscribers} deliveries "
        f"{m.cpu_ms['bet maker']:.0f} ms; players' max latency {max(m.players):.0f} ms "
        f"({max(m.players_with_slow):.0f} ms with the slow operators)."
    )


def main() -> None:
    if sys.argv[1:2] == ["clients"]:
        clients_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(prog="python -m bench.stream", description=__doc__)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    parser.add_argument("--profile", type=Path, help="py-spy the bet maker into this directory")
    args = parser.parse_args()
    profiler = Profiler(args.profile)
    report = Report("bench.stream")
    line = report.line
    with local_stack() as stack:
        m = measure(stack, args.subscribers, args.slow, args.rounds, args.interval, profiler)

    line(f"- bet maker RSS before any subscriber: {m.rss_mb['idle']:.0f} MB")
    line(f"- one subscriber (the baseline), {len(m.one)} rounds: {spread(m.one)}")
    line(
        f"- {args.subscribers} subscribers live in {m.live_s:.1f} s; "
        f"bet maker RSS {m.rss_mb['live']:.0f} MB"
    )
    report.heading(
        f"{args.subscribers} players, {args.rounds} rounds of {args.subscribers} changes "
        f"(one transaction each, every {args.interval} s)"
    )
    line(
        f"- players: {len(m.players)} of {m.expected} deliveries; latency after commit "
        f"{spread(m.players)}; bet maker peak RSS {m.rss_mb['peak']:.0f} MB"
    )
    line(
        f"- CPU per round of {args.subscribers} deliveries: bet maker "
        f"{m.cpu_ms['bet maker']:.0f} ms, the clients' process {m.cpu_ms['clients']:.0f} ms"
    )
    report.heading(f"The same, while {args.slow} operators watching every bet stop reading")
    line(
        f"- players: {len(m.players_with_slow)} of {m.expected} deliveries; latency after "
        f"commit {spread(m.players_with_slow)}; bet maker peak RSS "
        f"{m.rss_mb['peak with slow']:.0f} MB"
    )
    line(
        f"- slow operators: {m.slow_seen['live']} went live, {m.slow_seen['dropped']} read the "
        f"'too slow' comment, {m.slow_seen['ended']} streams ended by the bet maker"
    )
    profiler.write_summary()
    report.write(
        HERE / "results-stream.md",
        "The bet stream",
        f"python -m bench.stream --subscribers {args.subscribers} --slow {args.slow} "
        f"--rounds {args.rounds} --interval {args.interval}",
    )


if __name__ == "__main__":
    main()
