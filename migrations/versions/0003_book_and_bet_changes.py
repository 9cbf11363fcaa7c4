"""The book's running totals and the bet stream's change log.

`book_totals` holds, per event, market and shard, the number of bets, their stakes and their
potential payouts. Triggers on `bets` keep it as bets are placed, changed and withdrawn, so
every writer of bets counts the same way and the book reads a few dozen rows instead of a
million bets. A bet counts in the shard its id picks: concurrent placements on one event
update different rows.

`bet_changes` is the bet stream's log: one row per transaction that changed bet states (the
bet writer, the rebase), its changes as parallel arrays. Appending to it notifies the
`bet_changes` channel once per statement; the gateway LISTENs there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
TOTAL = sa.Numeric(38, 2)

# The last byte of a (random, version 4) bet id picks its shard: 16 rows per market share
# the placements on one event. Readers sum over shards and need not know how many there are.
SHARD_OF = """
CREATE FUNCTION book_shard(bet_id uuid) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN get_byte(uuid_send(bet_id), 15) % 16
"""

# Statement-level with a transition table: a bulk insert adds its bets in one upsert per
# shard, a single placement in one. Sorted, so two bulk inserts lock shards in one order.
COUNT_NEW_BETS = """
CREATE FUNCTION book_count_new_bets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO book_totals AS t (event_id, market, shard, bets, stake, potential_payout)
    SELECT event_id, market, book_shard(id), count(*), sum(amount), sum(potential_payout)
    FROM new_bets
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (event_id, market, shard) DO UPDATE
    SET bets = t.bets + excluded.bets,
        stake = t.stake + excluded.stake,
        potential_payout = t.potential_payout + excluded.potential_payout;
    RETURN NULL;
END $$
"""

UNCOUNT_OLD_BETS = """
CREATE FUNCTION book_uncount_old_bets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE book_totals AS t
    SET bets = t.bets - gone.bets,
        stake = t.stake - gone.stake,
        potential_payout = t.potential_payout - gone.potential_payout
    FROM (
        SELECT event_id, market, book_shard(id) AS shard, count(*) AS bets,
               sum(amount) AS stake, sum(potential_payout) AS potential_payout
        FROM old_bets
        GROUP BY 1, 2, 3
    ) AS gone
    WHERE (t.event_id, t.market, t.shard) = (gone.event_id, gone.market, gone.shard);
    RETURN NULL;
END $$
"""

# Row-level: transition tables cannot go with a column list, and without one this would fire
# on every state update the bet writer makes. Only a new stake changes these columns; a bet's
# event and market never change (docs/DESIGN.md, rule 5).
RESTAKE_BET = """
CREATE FUNCTION book_restake_bet() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE book_totals
    SET stake = stake + NEW.amount - OLD.amount,
        potential_payout = potential_payout + NEW.potential_payout - OLD.potential_payout
    WHERE (event_id, market, shard) = (NEW.event_id, NEW.market, book_shard(NEW.id));
    RETURN NULL;
END $$
"""

NOTIFY_CHANGES = """
CREATE FUNCTION bet_changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_entries) THEN
        PERFORM pg_notify('bet_changes', '');
    END IF;
    RETURN NULL;
END $$
"""

TRIGGERS = {
    "bets_book_insert": """
        CREATE TRIGGER bets_book_insert AFTER INSERT ON bets
        REFERENCING NEW TABLE AS new_bets
        FOR EACH STATEMENT EXECUTE FUNCTION book_count_new_bets()""",
    "bets_book_delete": """
        CREATE TRIGGER bets_book_delete AFTER DELETE ON bets
        REFERENCING OLD TABLE AS old_bets
        FOR EACH STATEMENT EXECUTE FUNCTION book_uncount_old_bets()""",
    "bets_book_restake": """
        CREATE TRIGGER bets_book_restake AFTER UPDATE OF amount, potential_payout ON bets
        FOR EACH ROW
        WHEN (OLD.amount IS DISTINCT FROM NEW.amount
              OR OLD.potential_payout IS DISTINCT FROM NEW.potential_payout)
        EXECUTE FUNCTION book_restake_bet()""",
}
FUNCTIONS = ("book_count_new_bets", "book_uncount_old_bets", "book_restake_bet")


def upgrade() -> None:
    op.create_table(
        "book_totals",
        sa.Column("event_id", sa.Uuid(), sa.ForeignKey("events.id"), primary_key=True),
        sa.Column("market", sa.String(16), primary_key=True),
        sa.Column("shard", sa.SmallInteger(), primary_key=True),
        sa.Column("bets", sa.BigInteger(), nullable=False),
        sa.Column("stake", TOTAL, nullable=False),
        sa.Column("potential_payout", TOTAL, nullable=False),
    )
    op.execute(SHARD_OF)
    for function in (COUNT_NEW_BETS, UNCOUNT_OLD_BETS, RESTAKE_BET):
        op.execute(function)
    # The bets already placed, then the triggers, in one transaction: none is counted twice
    # or missed (placements wait for the lock the trigger creation takes on bets).
    op.execute("LOCK TABLE bets IN SHARE MODE")
    op.execute("""
        INSERT INTO book_totals (event_id, market, shard, bets, stake, potential_payout)
        SELECT event_id, market, book_shard(id), count(*), sum(amount), sum(potential_payout)
        FROM bets GROUP BY 1, 2, 3
    """)
    for trigger in TRIGGERS.values():
        op.execute(trigger)

    op.create_table(
        "bet_changes",
        sa.Column("xid", sa.BigInteger(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("bet_ids", sa.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("event_ids", sa.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("user_ids", sa.ARRAY(sa.String(255)), nullable=False),
        sa.Column("states", sa.ARRAY(sa.String(16)), nullable=False),
        sa.Column("times", sa.ARRAY(TS), nullable=False),
        sa.Column("recorded_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_bet_changes_recorded_at", "bet_changes", ["recorded_at"])
    op.execute(NOTIFY_CHANGES)
    op.execute("""
        CREATE TRIGGER bet_changes_notify AFTER INSERT ON bet_changes
        REFERENCING NEW TABLE AS new_entries
        FOR EACH STATEMENT EXECUTE FUNCTION bet_changes_notify()
    """)


def downgrade() -> None:
    op.drop_table("bet_changes")
    op.execute("DROP FUNCTION bet_changes_notify()")
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON bets")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}()")
    op.execute("DROP FUNCTION book_shard(uuid)")
    op.drop_table("book_totals")
