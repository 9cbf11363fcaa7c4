"""Log incarnations, and idempotency keys that outlive their bet and expire.

`log_incarnations` records, per topic, the broker's id of the topic the stored log positions
(events' versions, `log_progress`) come from: a recreated topic has a new id, so a message of
the new log is never taken for a duplicate of an old one (docs/DESIGN.md, rule 8). Empty after
this migration: `betting setup` records the topics as they are (no rebase for a log that was
already there).

An idempotency key used to be deleted with its bet, so a replay after a withdrawal placed a
second bet. The key now stays (its `bet_id` becomes null) until it expires; indexes serve the
lookup by bet (on withdrawal) and the purge by age.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
KEY_FK = "idempotency_keys_bet_id_fkey"


def upgrade() -> None:
    op.create_table(
        "log_incarnations",
        sa.Column("topic", sa.String(255), primary_key=True),
        sa.Column("incarnation", sa.String(64), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
    )
    op.drop_constraint(KEY_FK, "idempotency_keys", type_="foreignkey")
    op.alter_column("idempotency_keys", "bet_id", nullable=True)
    op.create_foreign_key(
        KEY_FK, "idempotency_keys", "bets", ["bet_id"], ["id"], ondelete="SET NULL"
    )
    op.create_index("ix_idempotency_keys_bet_id", "idempotency_keys", ["bet_id"])
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", "idempotency_keys")
    op.drop_index("ix_idempotency_keys_bet_id", "idempotency_keys")
    op.execute("DELETE FROM idempotency_keys WHERE bet_id IS NULL")
    op.drop_constraint(KEY_FK, "idempotency_keys", type_="foreignkey")
    op.alter_column("idempotency_keys", "bet_id", nullable=False)
    op.create_foreign_key(
        KEY_FK, "idempotency_keys", "bets", ["bet_id"], ["id"], ondelete="CASCADE"
    )
    op.drop_table("log_incarnations")
