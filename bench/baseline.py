"""The database's own speed: a copy of an event's bets, changed by one `UPDATE`.

The copy has the bets table's columns and indexes (`LIKE … INCLUDING ALL`), so one `UPDATE`
of it is the floor any pipeline writing the same rows can be judged against.
"""

import time
from typing import Any

from sqlalchemy import column, literal_column
from sqlalchemy.dialects import postgresql

from betting.db import payout_sql


def copy_bets(cur: Any, table: str, event_id: str) -> None:
    """(Re)create `table` holding a copy of the event's bets, vacuumed and analysed."""
    cur.execute(f"DROP TABLE IF EXISTS {table}")
    cur.execute(f"CREATE TABLE {table} (LIKE bets INCLUDING ALL)")
    cur.execute(f"INSERT INTO {table} SELECT * FROM bets WHERE event_id = %s", (event_id,))
    cur.execute(f"VACUUM ANALYZE {table}")


def _target_sql(targets: dict[str, str]) -> str:
    # Market and state names are the domain's own constants, never input.
    arms = " ".join(f"WHEN '{market}' THEN '{state}'" for market, state in targets.items())
    return f"CASE market {arms} END"


def _payout_sql(target: str) -> str:
    # The pipeline's own payout rule (`betting.db.payout_sql`), over the new state.
    expression = payout_sql(
        literal_column(f"({target})"), amount=column("amount"), potential=column("potential_payout")
    )
    compiled = expression.compile(
        dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"literal_binds": True},
    )
    return str(compiled)


def update_copy(
    cur: Any, table: str, event_id: str, targets: dict[str, str], version: int
) -> float:
    """Seconds one `UPDATE` takes to give the copy's rows of each market their target state.

    Only rows whose state differs change, as in the pipeline.
    """
    target = _target_sql(targets)
    start = time.perf_counter()
    cur.execute(
        f"UPDATE {table} SET state = {target}, payout = {_payout_sql(target)}, "
        f"scored_version = %s, updated_at = now() "
        f"WHERE event_id = %s AND state <> {target}",
        (version, event_id),
    )
    return time.perf_counter() - start
