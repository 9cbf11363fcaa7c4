"""Latency: how long until what an operator changes is visible over the API.

1. `POST /events` → `GET /events/{id}` answers `200`; baseline: the `POST`'s own round trip
   plus one `GET` of the stored event (what a synchronous create would cost).
2. Bets placed over HTTP by 10 players on one event, then the event is activated and its score
   changed one goal at a time; each change is timed from sending the `PATCH` until `GET /bets`
   shows every bet in its new state. Baseline: one `UPDATE` of a copy of the same bets to the
   same states plus one such `GET /bets` pass (what a synchronous change would cost).
"""

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from itertools import islice
from typing import Any

import httpx

from bench import api, baseline
from bench.figures import Figure, Results, percentile
from bench.profile import Profiler
from bench.stack import FUNCTIONS, Stack
from betting.auth import Role

log = logging.getLogger(__name__)

PLAYERS = 10
COPY = "bench_latency_copy"
# Who scores each goal: every change moves the lead, so two markets' bets change state.
GOALS = ("team_1", "team_2", "team_2", "team_1")


def _ms(seconds: float) -> float:
    return seconds * 1000


def create_to_readable(client: httpx.Client, samples: int) -> tuple[list[float], list[float]]:
    """Seconds from `POST /events` to readable, and the synchronous floor, per sample."""
    operator = api.bearer("bench-operator", Role.OPERATOR)
    waits: list[float] = []
    floors: list[float] = []
    for _ in range(samples):
        sent = time.monotonic()
        event_id = api.create_event(client, operator)
        accepted = time.monotonic()
        readable = api.wait_event(client, event_id, timeout_s=60)
        get_start = time.monotonic()
        api.expect(client.get(f"/events/{event_id}"), 200)
        waits.append(readable - sent)
        floors.append(accepted - sent + time.monotonic() - get_start)
    return waits, floors


def _place(url: str, player: str, event_id: str, count: int) -> None:
    headers = api.bearer(player, Role.PLAYER)
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(count):
            api.place_bet(client, headers, event_id, api.MARKETS[i % len(api.MARKETS)])


def _scores() -> Iterator[str]:
    goals = {"team_1": 0, "team_2": 0}
    while True:
        for team in GOALS:
            goals[team] += 1
            yield f"{goals['team_1']}-{goals['team_2']}"


def _market_total(
    client: httpx.Client, operator: dict[str, str], event_id: str, **query: str
) -> int:
    response = client.get(
        "/bets", headers=operator, params={"event_id": event_id, "limit": 1, **query}
    )
    total: int = api.expect(response, 200).json()["total"]
    return total


def _visible(
    client: httpx.Client,
    operator: dict[str, str],
    event_id: str,
    targets: dict[str, str],
    per_market: dict[str, int],
) -> bool:
    """Whether `GET /bets` shows every bet of the given markets in its target state."""
    return all(
        _market_total(client, operator, event_id, market=market, state=state) == per_market[market]
        for market, state in targets.items()
    )


def _check_every_page(url: str, event_id: str, targets: dict[str, str], per_player: int) -> None:
    """Each player's own pages show each of their bets in its new state."""
    for p in range(PLAYERS):
        headers = api.bearer(f"latency-player-{p}", Role.PLAYER)
        seen = 0
        with httpx.Client(base_url=url, timeout=30) as client:
            while seen < per_player:
                page = client.get(
                    "/bets",
                    headers=headers,
                    params={"event_id": event_id, "limit": 100, "offset": seen},
                )
                items: list[dict[str, Any]] = api.expect(page, 200).json()["items"]
                if not items:
                    raise RuntimeError(f"player {p} sees {seen} bets, placed {per_player}")
                for bet in items:
                    if bet["state"] != targets[bet["market"]]:
                        raise RuntimeError(f"bet {bet['id']} shows {bet['state']} after settling")
                seen += len(items)


def score_changes(
    stack: Stack, client: httpx.Client, bets: int, changes: int, profiler: Profiler
) -> tuple[list[float], list[float], list[float]]:
    """Seconds until each change is visible, until the event shows it, and the floor."""
    operator = api.bearer("bench-operator", Role.OPERATOR)
    event_id = api.create_event(client, operator)
    api.wait_event(client, event_id)
    per_player = bets // PLAYERS
    started = time.monotonic()
    with ThreadPoolExecutor(PLAYERS) as pool:
        placed = [
            pool.submit(_place, stack.bets_url, f"latency-player-{p}", event_id, per_player)
            for p in range(PLAYERS)
        ]
        for future in placed:
            future.result()
    log.info("placed %d bets over HTTP in %.1f s", bets, time.monotonic() - started)
    per_market = {m: _market_total(client, operator, event_id, market=m) for m in api.MARKETS}
    # The activation first (a warm-up, not counted), then one goal per change.
    plan = [("active", "0-0"), *(("active", score) for score in islice(_scores(), changes))]
    functions = {f: stack.pid(f) for f in FUNCTIONS}
    visible: list[float] = []
    stored: list[float] = []
    floors: list[float] = []
    conn = stack.connect()
    try:
        with conn.cursor() as cur, ExitStack() as watch:
            baseline.copy_bets(cur, COPY, event_id)
            # Wall-clock for the functions (where they wait matters), Python CPU for the gateway.
            watch.enter_context(profiler.phase("latency: score changes", functions, "wall"))
            watch.enter_context(
                profiler.phase(
                    "latency: score changes", {"bet-maker": stack.pid("bet-maker")}, "gil"
                )
            )
            previous = api.target_states("created", "0-0")
            for index, (state, score) in enumerate(plan):
                targets = api.target_states(state, score)
                moved = {m: s for m, s in targets.items() if s != previous[m]}
                sent = time.monotonic()
                if index == 0:
                    api.change_event(client, operator, event_id, state=state)
                else:
                    api.change_event(client, operator, event_id, score=score)
                event_seen = api.wait_event(client, event_id, 120, score=score, state=state)
                shown = partial(_visible, client, operator, event_id, moved, per_market)
                seen = api.wait_until(shown, 120, f"bets after {score}")
                stack.check_running()
                floor_start = time.monotonic()
                shown()
                baseline.update_copy(cur, COPY, event_id, targets, index)
                floor = time.monotonic() - floor_start
                _check_every_page(stack.bets_url, event_id, targets, per_player)
                if index > 0:  # the activation only warms up
                    visible.append(seen - sent)
                    stored.append(event_seen - sent)
                    floors.append(floor)
                previous = targets
            cur.execute(f"DROP TABLE {COPY}")
    finally:
        conn.close()
    api.change_event(client, operator, event_id, state="finished")
    return visible, stored, floors


def run(
    stack: Stack,
    client: httpx.Client,
    results: Results,
    *,
    bets: int,
    changes: int,
    creates: int,
    profiler: Profiler,
) -> None:
    """Measure both latencies; add their figures and samples."""
    waits, create_floors = create_to_readable(client, creates)
    results.add(
        Figure(
            "latency",
            f"POST /events → readable, p50 of {creates}",
            _ms(percentile(waits, 50)),
            "ms",
            _ms(percentile(create_floors, 50)),
            "POST round trip + one GET",
            "p50 ≤ 150 ms",
            _ms(percentile(waits, 50)) <= 150,
        )
    )
    visible, stored, floors = score_changes(stack, client, bets, changes, profiler)
    targets = {50: 150.0, 99: 500.0}
    for q in (50, 90, 99, 100):
        value = _ms(percentile(visible, q))
        target = targets.get(q)
        results.add(
            Figure(
                "latency",
                f"score change → GET /bets shows all {bets} bets, {'max' if q == 100 else f'p{q}'}",
                value,
                "ms",
                _ms(percentile(floors, q)),
                "one UPDATE of a copy + one GET /bets pass",
                f"≤ {target:g} ms" if target else "",
                value <= target if target else None,
            )
        )
    results.samples["latency"] = {
        "create_to_readable_ms": [_ms(x) for x in waits],
        "change_visible_ms": [_ms(x) for x in visible],
        "change_event_visible_ms": [_ms(x) for x in stored],
        "change_floor_ms": [_ms(x) for x in floors],
    }
    results.notes.append(
        f"Score change → the event itself readable (event writer applied it): p50 "
        f"{_ms(percentile(stored, 50)):.0f} ms of the {_ms(percentile(visible, 50)):.0f} ms."
    )
