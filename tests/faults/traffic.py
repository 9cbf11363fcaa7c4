"""Bounded client traffic against a running system while a part of it is broken: a few kinds
of calls, each sent in a loop by a number of threads, every answer recorded with when it was
sent and how long it took, so a test can ask what clients saw during a window."""

import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from bench.api import event_body
from tests.faults.conftest import System, operator, player
from tests.faults.load import warm

T = TypeVar("T")
# A call: given a client of the right server, send one request.
Call = Callable[[httpx.Client], httpx.Response]
# What a client saw for a request that got no answer at all.
NO_ANSWER = 0


@dataclass(frozen=True)
class Answer:
    sent_at: float
    took_s: float
    status: int


@dataclass
class Traffic:
    """Threads sending calls in a loop (each waits for its answer) until stopped."""

    urls: dict[str, str]
    timeout_s: float = 30.0
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self, name: str, server: str, call: Call, threads: int = 1, pause_s: float = 0.02
    ) -> None:
        self.answers[name] = []
        for number in range(threads):
            thread = threading.Thread(
                target=self._loop, args=(name, server, call, pause_s), name=f"{name}-{number}"
            )
            self._threads.append(thread)

    @contextmanager
    def running(self) -> Iterator["Traffic"]:
        for thread in self._threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join()

    def _loop(self, name: str, server: str, call: Call, pause_s: float) -> None:
        with httpx.Client(base_url=self.urls[server], timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    status = call(client).status_code
                except httpx.HTTPError:
                    status = NO_ANSWER
                answer = Answer(sent, time.monotonic() - sent, status)
                with self._lock:
                    self.answers[name].append(answer)
                self._stop.wait(pause_s)

    def between(self, name: str, start: float, end: float) -> list[Answer]:
        """The answers to the calls sent in [start, end)."""
        with self._lock:
            return [a for a in self.answers[name] if start <= a.sent_at < end]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(answers: list[Answer]) -> str:
    """`n`, the statuses seen and p50/p99/max latency in ms."""
    statuses: dict[int, int] = {}
    for answer in answers:
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
    took = [a.took_s * 1000 for a in answers]
    return (
        f"n={len(answers)} {statuses} p50 {percentile(took, 0.5):.0f} ms "
        f"p99 {percentile(took, 0.99):.0f} ms max {max(took, default=0):.0f} ms"
    )


@contextmanager
def another_process() -> Iterator[Any]:
    """A fresh Python process (spawned: nothing of this one's threads is inherited) to run calls
    in (`pool.apply(function, args)`); it has imported `tests.faults.load` before it is handed
    over, so that CPU is not spent while a test measures."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pool.apply(warm)
        yield pool


# The calls the fault tests send.


def get_bets(client: httpx.Client) -> httpx.Response:
    return client.get("/bets", headers=player(PLAYER))


def place_bet(event_id: str) -> Call:
    def call(client: httpx.Client) -> httpx.Response:
        body = {"event_id": event_id, "market": "draw", "amount": "1.00"}
        return client.post("/bets", headers=player(PLAYER), json=body)

    return call


def get_events(client: httpx.Client) -> httpx.Response:
    return client.get("/events", params={"limit": 10})


def post_event(client: httpx.Client) -> httpx.Response:
    return client.post("/events", headers=operator(), json=event_body())


def patch_event(event_id: str) -> Call:
    """A change the stored event allows at any time before kick-off: new odds."""

    def call(client: httpx.Client) -> httpx.Response:
        odds = {"team_1": "2.20", "team_2": "3.30", "draw": "3.10"}
        return client.patch(f"/events/{event_id}", headers=operator(), json={"odds": odds})

    return call


def ready(client: httpx.Client) -> httpx.Response:
    return client.get("/readyz")


# One player for the whole traffic (minted per call: the key is the system's, read at its start).
PLAYER = f"traffic-{uuid.uuid4().hex[:6]}"


def round_trip(system: System, timeout_s: float) -> float:
    """The whole way through, over HTTP as clients see it: publish an event, read it back,
    bet on it, start the match, and see the bet scored. Each call is retried while it answers
    503 (or not at all); returns how long it all took, failing after `timeout_s`."""
    started = time.monotonic()
    deadline = started + timeout_s
    bettor = player()

    def until(call: Callable[[], httpx.Response], done: Callable[[httpx.Response], bool]) -> Any:
        while True:
            try:
                response = call()
                if done(response):
                    return response.json()
                # Not yet: unavailable, not stored yet (404), or not scored yet (200).
                assert response.status_code in (200, 404, 503), response.text
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"no round trip within {timeout_s:.0f} s")
            time.sleep(0.1)

    with (
        system.client("line-provider", timeout_s=5) as events,
        system.client("bet-maker", timeout_s=5) as bets,
    ):
        event_id = until(
            lambda: events.post("/events", headers=operator(), json=event_body()),
            lambda r: r.status_code == 202,
        )["id"]
        until(lambda: events.get(f"/events/{event_id}"), lambda r: r.status_code == 200)
        body = {"event_id": event_id, "market": "draw", "amount": "1.00"}
        bet_id = until(
            lambda: bets.post("/bets", headers=bettor, json=body), lambda r: r.status_code == 201
        )["id"]
        until(
            lambda: events.patch(
                f"/events/{event_id}", headers=operator(), json={"state": "active"}
            ),
            lambda r: r.status_code == 202,
        )
        until(
            lambda: bets.get(f"/bets/{bet_id}", headers=bettor),
            lambda r: r.status_code == 200 and r.json()["state"] == "winning",
        )
    return time.monotonic() - started
