"""Settlement: N bets of one event settled by the pipeline vs one `UPDATE` of a copy of them.

The bets are inserted straight into Postgres, as the bet maker stores them. Then the event is
activated, scored twice and finished over HTTP; each step is timed from the `202` until every
row has the state the step gives it. The baseline is the same change made by one `UPDATE` of
a copy of the same rows with the same indexes, in the same run, just before the step.
"""

import logging
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench import api, baseline
from bench.figures import Figure, Results
from bench.memory import PeakRss, rss_mb
from bench.profile import Profiler
from bench.stack import FUNCTIONS, Stack
from betting.auth import Role
from betting.domain import BetState

log = logging.getLogger(__name__)

COPY = "bench_bets_copy"
# (changes sent, event state, score after them)
STEPS: tuple[tuple[str, dict[str, str], str, str], ...] = (
    ("activate", {"state": "active"}, "active", "0-0"),
    ("score 1-0", {"score": "1-0"}, "active", "1-0"),
    ("score 1-1", {"score": "1-1"}, "active", "1-1"),
    ("finish", {"state": "finished"}, "finished", "1-1"),
)
ALL_STATES = tuple(state.value for state in BetState)
# How often the rows are checked: often enough to time a 10k settlement, seldom enough that
# checking 1M rows does not compete with the writer.
POLL_S = (0.01, 0.5)
TARGET_RATIO = 3.0
RSS_LIMIT_MB = 250.0
# Events settled at a size, each step's figure the median of theirs: a 10k step takes a few
# tenths of a second against a tenth for its baseline, so one sample on a shared machine moves
# the ratio by a whole unit (3.9x and 2.7x for the same code, an hour apart).
REPEATS = {10_000: 3}


def insert_bets(cur: Any, event_id: str, count: int) -> None:
    """`count` bets spread over the three markets and 1,000 players, as placed at the odds."""
    cur.execute(
        """
        INSERT INTO bets (id, user_id, event_id, market, amount, odds, potential_payout,
                          state, scored_version, date_created, updated_at)
        SELECT gen_random_uuid(), 'settle-player-' || (g %% 1000), %(event)s, m.market,
               10.00, m.odds, trunc(10.00 * m.odds, 2), 'none', -1,
               now() + g * interval '1 microsecond', now() + g * interval '1 microsecond'
        FROM generate_series(0, %(count)s - 1) AS g
        JOIN (VALUES (0, 'team_1', %(o1)s::numeric), (1, 'team_2', %(o2)s::numeric),
                     (2, 'draw', %(od)s::numeric)) AS m(i, market, odds)
          ON m.i = g %% 3
        """,
        {
            "event": event_id,
            "count": count,
            "o1": api.ODDS["team_1"],
            "o2": api.ODDS["team_2"],
            "od": api.ODDS["draw"],
        },
    )


def _unsettled(cur: Any, event_id: str, targets: dict[str, str]) -> bool:
    """Whether any bet of the event is not yet in its market's target state (index lookups)."""
    checks = " OR ".join(
        "EXISTS (SELECT 1 FROM bets WHERE event_id = %s AND market = %s AND state = ANY(%s))"
        for _ in targets
    )
    params: list[Any] = []
    for market, target in targets.items():
        params += [event_id, market, [s for s in ALL_STATES if s != target]]
    cur.execute(f"SELECT {checks}", params)
    unsettled: bool = cur.fetchone()[0]
    return unsettled


@dataclass
class Step:
    name: str
    pipeline_s: float
    baseline_s: float
    event_stored_s: float
    peak_rss_mb: dict[str, float]


def _settle_step(
    stack: Stack,
    client: httpx.Client,
    cur: Any,
    operator: dict[str, str],
    event_id: str,
    step: tuple[str, dict[str, str], str, str],
    count: int,
    profiler: Profiler,
) -> Step:
    name, changes, state, score = step
    targets = api.target_states(state, score)
    cur.execute("SELECT version FROM events WHERE id = %s", (event_id,))
    version_before = cur.fetchone()[0]
    cur.execute("CHECKPOINT")  # neither side pays for the other's dirty pages
    baseline_s = baseline.update_copy(cur, COPY, event_id, targets, version_before + 1)
    cur.execute("CHECKPOINT")
    timeout_s = 300 + count / 1000
    stored_at: float | None = None
    pids = {f: stack.pid(f) for f in FUNCTIONS}
    with PeakRss(pids) as rss, profiler.phase(f"settle {_label(count)} bets", pids):
        accepted = api.change_event(client, operator, event_id, **changes)
        deadline = accepted + timeout_s
        while True:
            if stored_at is None:
                cur.execute("SELECT version FROM events WHERE id = %s", (event_id,))
                if cur.fetchone()[0] != version_before:
                    stored_at = time.monotonic()
            if stored_at is not None and not _unsettled(cur, event_id, targets):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} bets not settled after {timeout_s:.0f} s ({name})")
            stack.check_running()
            time.sleep(min(POLL_S[1], max(POLL_S[0], count / 2e6)))
        done = time.monotonic()
    log.info("  %-9s pipeline %7.2f s, UPDATE %6.2f s", name, done - accepted, baseline_s)
    return Step(name, done - accepted, baseline_s, stored_at - accepted, dict(rss.peak_mb))


def settle(
    stack: Stack, client: httpx.Client, count: int, profiler: Profiler | None = None
) -> list[Step]:
    """One event with `count` bets through its whole life; one `Step` per change."""
    operator = api.bearer("bench-operator", Role.OPERATOR)
    event_id = api.create_event(client, operator)
    api.wait_event(client, event_id)
    conn = stack.connect()
    try:
        with conn.cursor() as cur:
            started = time.monotonic()
            insert_bets(cur, event_id, count)
            cur.execute("VACUUM ANALYZE bets")
            baseline.copy_bets(cur, COPY, event_id)
            log.info(
                "settlement of %d bets (inserted in %.1f s)", count, time.monotonic() - started
            )
            steps = [
                _settle_step(
                    stack, client, cur, operator, event_id, step, count, profiler or Profiler(None)
                )
                for step in STEPS
            ]
            cur.execute(f"DROP TABLE {COPY}")
    finally:
        conn.close()
    return steps


def _label(count: int) -> str:
    return f"{count // 1_000_000}M" if count >= 1_000_000 else f"{count // 1000}k"


def run(
    stack: Stack,
    client: httpx.Client,
    results: Results,
    *,
    counts: list[int],
    profiler: Profiler,
    profile_count: int,
) -> None:
    """Settle events of each size; add the time and memory figures.

    Only the settlement of `profile_count` bets is profiled.
    """
    idle = {f: rss_mb(stack.pid(f)) for f in FUNCTIONS}
    by_count: dict[int, list[Step]] = {}
    samples: list[tuple[int, Step]] = []
    for count in counts:
        runs = [
            settle(stack, client, count, profiler if count == profile_count and n == 0 else None)
            for n in range(REPEATS.get(count, 1))
        ]
        samples += [(count, step) for run in runs for step in run]
        by_count[count] = [_median_step(steps) for steps in zip(*runs, strict=True)]
    reference = 100_000 if 100_000 in by_count else min(by_count)
    reference_peak = {f: max(s.peak_rss_mb[f] for s in by_count[reference]) for f in FUNCTIONS}
    for count, steps in by_count.items():
        label = _label(count)
        for step in steps:
            ratio = step.pipeline_s / step.baseline_s
            results.add(
                Figure(
                    "settlement",
                    f"{label} bets: {step.name}",
                    step.pipeline_s,
                    "s",
                    step.baseline_s,
                    "one UPDATE of a copy",
                    f"≤ {TARGET_RATIO:g}×",
                    ratio <= TARGET_RATIO,
                )
            )
        for function in FUNCTIONS:
            peak = max(s.peak_rss_mb[function] for s in steps)
            growth = peak / reference_peak[function]
            within = peak <= RSS_LIMIT_MB and (count <= reference or growth <= 1.2)
            results.add(
                Figure(
                    "memory",
                    f"{function} peak RSS, {label} bets "
                    f"({growth:.2f}× the {_label(reference)} peak)",
                    peak,
                    "MB",
                    idle[function],
                    "idle RSS before settling",
                    f"≤ {RSS_LIMIT_MB:g} MB, ≤ 1.2× the {_label(reference)} peak",
                    within,
                )
            )
    results.samples["settlement"] = [
        {
            "bets": count,
            "step": s.name,
            "pipeline_s": s.pipeline_s,
            "baseline_s": s.baseline_s,
            "event_stored_s": s.event_stored_s,
            "peak_rss_mb": s.peak_rss_mb,
        }
        for count, s in samples
    ]
    for count, repeats in REPEATS.items():
        if count in by_count and repeats > 1:
            results.notes.append(
                f"Settlement of {_label(count)} bets: each step's figure is the median of "
                f"{repeats} events (pipeline and baseline alike; every sample is in "
                "results.json), and its peak RSS the highest of them."
            )


def _median_step(steps: tuple[Step, ...]) -> Step:
    """One step of several events: the median times, the highest peak RSS."""
    return Step(
        steps[0].name,
        statistics.median(s.pipeline_s for s in steps),
        statistics.median(s.baseline_s for s in steps),
        statistics.median(s.event_stored_s for s in steps),
        {f: max(s.peak_rss_mb[f] for s in steps) for f in steps[0].peak_rss_mb},
    )
