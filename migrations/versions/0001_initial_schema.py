"""Events, bets, idempotency keys and log progress.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(12, 2)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("team_1", sa.String(128), nullable=False),
        sa.Column("team_2", sa.String(128), nullable=False),
        sa.Column("event_date", TS, nullable=False),
        sa.Column("deadline", TS, nullable=False),
        sa.Column("odds_team_1", MONEY, nullable=False),
        sa.Column("odds_team_2", MONEY, nullable=False),
        sa.Column("odds_draw", MONEY, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("score", sa.String(16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("score_version", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
        sa.CheckConstraint("state IN ('created', 'active', 'finished')", name="ck_events_state"),
        sa.CheckConstraint("deadline <= event_date", name="ck_events_deadline"),
    )
    op.create_index("ix_events_state_deadline", "events", ["state", "deadline"])
    op.create_index("ix_events_type", "events", ["type"])
    op.create_index("ix_events_event_date", "events", ["event_date"])

    op.create_table(
        "bets",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("event_id", sa.Uuid(), sa.ForeignKey("events.id"), nullable=False),
        sa.Column("market", sa.String(16), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("odds", MONEY, nullable=False),
        sa.Column("potential_payout", sa.Numeric(24, 2), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("scored_version", sa.BigInteger(), nullable=False),
        sa.Column("date_created", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("market IN ('team_1', 'team_2', 'draw')", name="ck_bets_market"),
        sa.CheckConstraint(
            "state IN ('none', 'winning', 'losing', 'win', 'lose')", name="ck_bets_state"
        ),
        sa.CheckConstraint("amount > 0 AND odds > 0", name="ck_bets_positive"),
    )
    op.create_index("ix_bets_event_market_state", "bets", ["event_id", "market", "state"])
    op.create_index("ix_bets_user_date", "bets", ["user_id", "date_created"])

    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column(
            "bet_id", sa.Uuid(), sa.ForeignKey("bets.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", TS, nullable=False),
    )

    op.create_table(
        "log_progress",
        sa.Column("topic", sa.String(255), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("applied_offset", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("log_progress")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_bets_user_date", "bets")
    op.drop_index("ix_bets_event_market_state", "bets")
    op.drop_table("bets")
    op.drop_index("ix_events_event_date", "events")
    op.drop_index("ix_events_type", "events")
    op.drop_index("ix_events_state_deadline", "events")
    op.drop_table("events")
