"""`python -m bench.writer_cost`: what the bet stream's log costs the bet writer.

The bet writer's statement appends one `bet_changes` row per batch (its transaction id and
the changed bets as arrays). This settles N bets (default 200,000) of one event in the
writer's batches (default 10,000 per transaction), alternately with the statement as it is
and with the same statement without the log (its RETURNING clause and the insert taken
away: the statement as it was before), three rounds each, and with one plain UPDATE of
the same rows (the settlement suite's floor). Reports each as a ratio to the floor and the
log's cost as a ratio with/without, all from the same run. Writes bench/results-writer.md.
"""

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.sql.elements import TextClause

from bench.pages import Report
from bench.stack import local_stack
from betting.db import returning_changed, session_scope
from functions.bet_writer import apply

HERE = Path(__file__).resolve().parent

EVENT_SQL = """
INSERT INTO events VALUES (%s, 'football', 'Ajax', 'PSV', now(), now(), 2.10, 3.40, 3.00,
  'active', '0-0', 0, 0, now(), now(), NULL)
"""
BETS_SQL = """
INSERT INTO bets (id, user_id, event_id, market, amount, odds, potential_payout, state,
                  payout, scored_version, date_created, updated_at)
SELECT gen_random_uuid(), 'player-' || (g %% 50000), %(event)s,
       (ARRAY['team_1', 'team_2', 'draw'])[1 + g %% 3], 10, 2, 20, 'none', NULL, -1,
       now(), now()
FROM generate_series(1, %(count)s) AS g
"""


def without_log() -> TextClause:
    """The writer's UPDATE as it was before the log: no RETURNING, nothing appended."""
    update = apply._UPDATE
    bare = text(update.text.replace(returning_changed("b"), ""))
    return bare.bindparams(*update._bindparams.values())


def settle(statement: Any, event: str, bets: list[str], version: int, batch: int) -> float:
    """Seconds to give every bet a new state in the writer's batches, one transaction each."""
    state = "winning" if version % 2 else "losing"
    with session_scope() as session:
        session.execute(
            text("UPDATE events SET version = :v, score_version = :v WHERE id = :id"),
            {"v": version, "id": event},
        )
    started = time.perf_counter()
    for first in range(0, len(bets), batch):
        ids = bets[first : first + batch]
        with session_scope() as session:
            session.execute(
                statement,
                {
                    "ids": ids,
                    "event_ids": [event] * len(ids),
                    "states": [state] * len(ids),
                    "versions": [version] * len(ids),
                    "times_ms": [int(time.time() * 1000)] * len(ids),
                },
            )
    return time.perf_counter() - started


def plain_update(event: str, version: int) -> float:
    """Seconds one UPDATE takes to give the same rows a new state: the floor."""
    state = "winning" if version % 2 else "losing"
    started = time.perf_counter()
    with session_scope() as session:
        session.execute(
            text("UPDATE bets SET state = :s, scored_version = :v, updated_at = now() "
                 "WHERE event_id = :id"),
            {"s": state, "v": version, "id": event},
        )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.writer_cost", description=__doc__)
    parser.add_argument("--bets", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    report = Report("bench.writer_cost")
    with local_stack() as stack:
        event = str(uuid.uuid4())
        conn = stack.connect()
        with conn.cursor() as cur:
            cur.execute(EVENT_SQL, (event,))
            cur.execute(BETS_SQL, {"event": event, "count": args.bets})
            cur.execute("SELECT id FROM bets WHERE event_id = %s ORDER BY id", (event,))
            bets = [str(row[0]) for row in cur.fetchall()]
            cur.execute("VACUUM ANALYZE bets")
        conn.close()
        variants: dict[str, Callable[[int], float]] = {
            "with the log": lambda v: settle(apply._APPLY, event, bets, v, args.batch),
            "without": lambda v: settle(without_log(), event, bets, v, args.batch),
            "one plain UPDATE (floor)": lambda v: plain_update(event, v),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        version = 0
        for _ in range(args.rounds):
            for name, run in variants.items():
                version += 1
                times[name].append(run(version))
                report.line(f"- round: {name}, {times[name][-1]:.1f} s")
    median = {name: statistics.median(samples) for name, samples in times.items()}
    floor = median["one plain UPDATE (floor)"]
    report.heading(
        f"Settling {args.bets:,} bets in batches of {args.batch:,}, median of {args.rounds}"
    )
    for name, seconds in median.items():
        samples = ", ".join(f"{s:.1f}" for s in times[name])
        report.line(f"- {name}: {seconds:.1f} s ({seconds / floor:.2f}× the floor; {samples})")
    report.line(
        f"- the log's cost: {median['with the log'] / median['without']:.2f}× "
        "the statement without it"
    )
    report.write(
        HERE / "results-writer.md",
        "What the bet stream's log costs the bet writer",
        f"python -m bench.writer_cost --bets {args.bets} --batch {args.batch}",
    )


if __name__ == "__main__":
    main()
