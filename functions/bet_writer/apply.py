"""Apply `bets.state` updates to the bets table in one set-based statement per batch."""

from collections.abc import Iterable

from sqlalchemy import bindparam, literal_column, text
from sqlalchemy.dialects.postgresql import TEXT
from sqlmodel import Session

from betting.db import log_changes, payout_sql, returning_changed
from betting.messages import BetUpdate, decode_bet_scored
from betting.streams import LogRecord, Rejected, decode_all

# What the bet pays in its new state, from its own stake and potential payout.
_PAYOUT = payout_sql(
    literal_column("u.state"),
    amount=literal_column("b.amount"),
    potential=literal_column("b.potential_payout"),
).compile(compile_kwargs={"literal_binds": True})

# An update lands only if it is newer than the bet's last one (duplicates and replays change
# nothing) and was computed from the event's current score: an update from an older score
# is dropped, because the scorer has already compared the bet with the newer one. Locking
# the events FOR SHARE makes that check and the write atomic with respect to the event writer.
# Each a Postgres array literal (`_array`), cast in the statement.
_COLUMNS = ("ids", "event_ids", "states", "versions", "times_ms")
_UPDATE = text(f"""
    WITH updates AS (
        SELECT id, event_id, state, version, to_timestamp(at_ms / 1000.0) AS at
        FROM unnest(CAST(:ids AS uuid[]), CAST(:event_ids AS uuid[]), CAST(:states AS text[]),
                    CAST(:versions AS bigint[]), CAST(:times_ms AS bigint[]))
            AS u(id, event_id, state, version, at_ms)
    ), current_events AS (
        SELECT e.id, e.score_version FROM events e
        WHERE e.id IN (SELECT DISTINCT event_id FROM updates)
        ORDER BY e.id
        FOR SHARE
    )
    UPDATE bets b
    SET state = u.state,
        payout = {_PAYOUT},
        scored_version = u.version,
        updated_at = u.at
    FROM updates u JOIN current_events e ON e.id = u.event_id
    WHERE b.id = u.id
      AND b.event_id = u.event_id
      AND b.scored_version < u.version
      AND e.score_version = u.version
    {returning_changed("b")}
""").bindparams(*(bindparam(column, type_=TEXT) for column in _COLUMNS))
# The same statement appends what it changed to the bet stream's log: one entry per batch.
_APPLY = log_changes(_UPDATE)


def apply_bet_updates(*, session: Session, topic: str, records: list[LogRecord]) -> list[Rejected]:
    """Write the newest update per bet in `records`; return the rejects."""
    decoded, rejected = decode_all(records, decode_bet_scored)
    newest: dict[str, tuple[BetUpdate, int]] = {}
    for record, update in decoded:
        seen = newest.get(update.bet_id)
        if seen is None or update.version >= seen[0].version:
            newest[update.bet_id] = (update, record.timestamp_ms)
    if not newest:
        return rejected
    updates = list(newest.values())
    session.execute(
        _APPLY,
        {
            "ids": _array(u.bet_id for u, _ in updates),
            "event_ids": _array(u.event_id for u, _ in updates),
            "states": _array(u.state for u, _ in updates),
            "versions": _array(str(u.version) for u, _ in updates),
            "times_ms": _array(str(at_ms) for _, at_ms in updates),
        },
    )
    return rejected


def _array(items: Iterable[str]) -> str:
    """A Postgres array literal of `items`, which need no quoting (canonical UUIDs, state
    names, integers: what `decode_bet_scored` returns). One text parameter per column instead
    of a list the driver adapts item by item: for 10,000 bets, 2.5 ms against 12 ms, while
    the other partitions' writers wait for the interpreter."""
    return "{" + ",".join(items) + "}"
