"""`python -m bench.book`: the book of an event with a million bets, and what it costs.

Measures, against the local stack (`bench/stack.py`: the two servers on 127.0.0.1, a durable
Postgres):

- GET /events/{id}/book for an event with N bets (default 1,000,000): p50/p99 of 200 calls,
  beside GET /events/{id} in the same run; again right after a settlement step rewrote
  every one of its bets (the book reads the running totals, so that changes nothing);
- the plain aggregate it replaces, for the record: SUM over the event's bets with a covering
  index (event_id, market) INCLUDE (amount, potential_payout, payout), vacuumed, and again
  right after the same settlement step (built for the measurement, then dropped);
- what the totals cost bet placement: single-placement transactions in SQL and POST /bets
  over HTTP (wrk, 16 connections), each with the book's triggers enabled and disabled,
  alternating, in the same run.

Writes bench/results-book.md. Every loop is bounded in count and time.
"""

import argparse
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.figures import Figure, Results, percentile
from bench.pages import Report
from bench.stack import Stack, local_stack
from betting.auth import Role, mint_token

HERE = Path(__file__).resolve().parent
TRIGGERS = ("bets_book_insert", "bets_book_delete", "bets_book_restake")

EVENT_SQL = """
INSERT INTO events VALUES (%s, 'football', 'Ajax', 'PSV', now() + interval '30 days',
  now() + interval '30 days', 2.10, 3.40, 3.00, 'created', '0-0', 0, 0, now(), now(), NULL)
"""
# As the gateway stores them: 50,000 players, the three markets in turn, stakes 1-100.
BETS_SQL = """
INSERT INTO bets (id, user_id, event_id, market, amount, odds, potential_payout, state,
                  payout, scored_version, date_created, updated_at)
SELECT gen_random_uuid(), 'player-' || (g %% 50000), %(event)s, m.market, a.amount, m.odds,
       trunc(a.amount * m.odds, 2), 'none', NULL, -1, now(), now()
FROM generate_series(1, %(count)s) AS g
CROSS JOIN LATERAL (SELECT round((1 + random() * 99)::numeric, 2) AS amount) AS a
CROSS JOIN LATERAL (SELECT (ARRAY['team_1', 'team_2', 'draw'])[1 + g %% 3] AS market,
                           (ARRAY[2.10, 3.40, 3.00])[1 + g %% 3]::numeric AS odds) AS m
"""
PLAIN_AGGREGATE = """
SELECT market, count(*), sum(amount), sum(potential_payout), count(payout), sum(payout)
FROM bets WHERE event_id = %s GROUP BY market
"""
# What a settlement step does to every bet of the event: a new state (and payout).
SETTLE_STEP = """
UPDATE bets SET state = CASE market WHEN 'draw' THEN 'winning' ELSE 'losing' END,
                scored_version = scored_version + 1, updated_at = now()
WHERE event_id = %s
"""


def timed(call: Callable[[], Any], count: int) -> list[float]:
    """Milliseconds of each of `count` calls, after two warm-up calls."""
    for _ in range(2):
        call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 50):.1f} ms, p99 {percentile(samples, 99):.1f} ms"


def http_latency(client: httpx.Client, path: str, headers: dict[str, str]) -> list[float]:
    def call() -> None:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, response.text

    return timed(call, 200)


def sql_latency(stack: Stack, statement: str, *params: Any) -> list[float]:
    conn = stack.connect()
    try:
        with conn.cursor() as cur:

            def call() -> None:
                cur.execute(statement, params)
                cur.fetchall()

            return timed(call, 20)
    finally:
        conn.close()


def set_triggers(stack: Stack, enabled: bool) -> None:
    conn = stack.connect()
    try:
        with conn.cursor() as cur:
            for name in TRIGGERS:
                cur.execute(f"ALTER TABLE bets {'ENABLE' if enabled else 'DISABLE'} TRIGGER {name}")
    finally:
        conn.close()


def sql_placements(stack: Stack, event: str, count: int) -> float:
    """Milliseconds per placement transaction, as the bet maker makes them, in SQL."""
    conn = stack.connect()
    conn.autocommit = False  # the lock and the insert in one transaction, as placement does
    try:
        with conn.cursor() as cur:
            started = time.perf_counter()
            for _ in range(count):
                cur.execute("SELECT id FROM events WHERE id = %s FOR SHARE", (event,))
                cur.execute(
                    "INSERT INTO bets (id, user_id, event_id, market, amount, odds, "
                    "potential_payout, state, payout, scored_version, date_created, updated_at) "
                    "VALUES (%s, 'p', %s, 'draw', 10, 3, 30, 'none', NULL, -1, now(), now())",
                    (str(uuid.uuid4()), event),
                )
                conn.commit()
            return (time.perf_counter() - started) * 1000 / count
    finally:
        conn.close()


def wrk_placements(stack: Stack, event: str, seconds: int) -> float:
    """POST /bets per second over 16 connections (wrk), every request a new bet."""
    script = f"""
wrk.method = "POST"
wrk.body = '{{"event_id": "{event}", "market": "team_1", "amount": "5.00"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {mint_token("bench-player", Role.PLAYER)}"
"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        out = subprocess.run(
            ["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", lua.name, f"{stack.bets_url}/bets"],
            capture_output=True, text=True, check=True, timeout=seconds + 30,
        ).stdout  # fmt: skip
    if "Non-2xx" in out:
        raise RuntimeError(f"POST /bets failed under load:\n{out}")
    return float(out.split("Requests/sec:")[1].split()[0])


def rounds(samples: dict[bool, list[float]], spec: str) -> str:
    return "; ".join(
        f"{'with' if on else 'without'}: {', '.join(format(x, spec) for x in xs)}"
        for on, xs in samples.items()
    )


def seed(stack: Stack, bets: int) -> tuple[str, str]:
    """An event with `bets` bets and one without, the table vacuumed: their ids."""
    event, other = str(uuid.uuid4()), str(uuid.uuid4())
    conn = stack.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(EVENT_SQL, (event,))
            cur.execute(EVENT_SQL, (other,))
            cur.execute(BETS_SQL, {"event": event, "count": bets})
            cur.execute("VACUUM ANALYZE bets")
    finally:
        conn.close()
    return event, other


def run(stack: Stack, client: httpx.Client, results: Results, *, bets: int) -> None:
    """The suite's section (`make bench`): the book beside the plain aggregate it replaces."""
    operator = {"Authorization": f"Bearer {mint_token('bench-operator', Role.OPERATOR)}"}
    event, _ = seed(stack, bets)
    book = client.get(f"/events/{event}/book", headers=operator).json()
    assert book["bets"] == bets, book
    served = http_latency(client, f"/events/{event}/book", operator)
    plain = sql_latency(stack, PLAIN_AGGREGATE, event)
    for q in (50, 99):
        results.add(
            Figure(
                "book", f"GET /events/{{id}}/book, {bets:,} bets, p{q}",
                percentile(served, q), "ms", percentile(plain, q),
                "the plain aggregate: SUM over the event's bets, in SQL alone",
                "< 200 ms" if q == 99 else "", percentile(served, 99) < 200 if q == 99 else None,
            )
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.book", description=__doc__)
    parser.add_argument("--bets", type=int, default=1_000_000)
    parser.add_argument("--placements", type=int, default=2000, help="SQL placements per round")
    parser.add_argument("--wrk-seconds", type=int, default=10)
    args = parser.parse_args()
    report = Report("bench.book")
    line, heading = report.line, report.heading

    with local_stack() as stack, stack.client() as client:
        operator = {"Authorization": f"Bearer {mint_token('bench-operator', Role.OPERATOR)}"}
        started = time.perf_counter()
        event, other = seed(stack, args.bets)
        line(f"Inserted {args.bets:,} bets in {time.perf_counter() - started:.0f} s.")
        conn = stack.connect()
        book = client.get(f"/events/{event}/book", headers=operator).json()
        assert book["bets"] == args.bets, book

        heading("The book over HTTP")
        base = http_latency(client, f"/events/{event}", {})
        line(f"- GET /events/{{id}} (baseline): {summary(base)}")
        fresh = http_latency(client, f"/events/{event}/book", operator)
        line(f"- GET /events/{{id}}/book, {args.bets:,} bets: {summary(fresh)}")

        heading("The plain aggregate, for the record (covering index built for it)")
        with conn.cursor() as cur:
            cur.execute(
                "CREATE INDEX bench_book ON bets (event_id, market) "
                "INCLUDE (amount, potential_payout, payout)"
            )
            cur.execute("VACUUM ANALYZE bets")
        plain = sql_latency(stack, PLAIN_AGGREGATE, event)
        line(f"- SUM over the bets, vacuumed: {summary(plain)}")
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute(SETTLE_STEP, (event,))
        took = time.perf_counter() - started
        line(f"- a settlement step rewrote the {args.bets:,} bets in {took:.0f} s")
        plain_after = sql_latency(stack, PLAIN_AGGREGATE, event)
        line(f"- SUM over the bets, right after it: {summary(plain_after)}")
        after = http_latency(client, f"/events/{event}/book", operator)
        line(f"- GET /events/{{id}}/book right after it: {summary(after)}")
        with conn.cursor() as cur:
            cur.execute("DROP INDEX bench_book")

        heading("What the running totals cost bet placement (same run, alternating)")
        sql: dict[bool, list[float]] = {True: [], False: []}
        http: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(3):
            for enabled in (True, False):
                set_triggers(stack, enabled)
                sql[enabled].append(sql_placements(stack, other, args.placements))
                http[enabled].append(wrk_placements(stack, other, args.wrk_seconds))
        set_triggers(stack, True)
        on, off = statistics.median(sql[True]), statistics.median(sql[False])
        line(
            f"- SQL placement transaction, median of 3 rounds of {args.placements}: "
            f"{on:.3f} ms with the totals, {off:.3f} ms without ({on / off:.2f}×); "
            f"rounds {rounds(sql, '.3f')}"
        )
        on, off = statistics.median(http[True]), statistics.median(http[False])
        line(
            f"- POST /bets (wrk, 16 connections, {args.wrk_seconds} s), median of 3: "
            f"{on:.0f} req/s with the totals, {off:.0f} without ({on / off:.2f}×); "
            f"rounds {rounds(http, '.0f')}"
        )
        conn.close()

    report.write(HERE / "results-book.md", "The book", f"python -m bench.book --bets {args.bets}")


if __name__ == "__main__":
    main()
