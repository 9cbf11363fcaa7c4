"""Apply `bets.state` updates to the bets table in one set-based statement per batch."""

from sqlalchemy import bindparam, literal_column, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, TEXT, UUID
from sqlmodel import Session

from betting.db import payout_sql
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
_APPLY = text(f"""
    WITH updates AS (
        SELECT id, event_id, state, version, to_timestamp(at_ms / 1000.0) AS at
        FROM unnest(:ids, :event_ids, :states, :versions, :times_ms)
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
""").bindparams(
    bindparam("ids", type_=ARRAY(UUID(as_uuid=False))),
    bindparam("event_ids", type_=ARRAY(UUID(as_uuid=False))),
    bindparam("states", type_=ARRAY(TEXT)),
    bindparam("versions", type_=ARRAY(BIGINT)),
    bindparam("times_ms", type_=ARRAY(BIGINT)),
)


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
            "ids": [u.bet_id for u, _ in updates],
            "event_ids": [u.event_id for u, _ in updates],
            "states": [u.state for u, _ in updates],
            "versions": [u.version for u, _ in updates],
            "times_ms": [at_ms for _, at_ms in updates],
        },
    )
    return rejected
