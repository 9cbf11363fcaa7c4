"""Cancelled events, void bets, and the payout every settled bet records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The domain's SETTLEMENTS as this revision knows them: a win pays its potential payout, a
# loss nothing, a void bet its stake back, and an unsettled bet has no payout yet. Written out
# here because a migration records the schema of its day; a test checks that the database
# accepts exactly what the domain says.
PAYOUT_OF_STATE = (
    "CASE state WHEN 'win' THEN potential_payout WHEN 'lose' THEN 0 WHEN 'void' THEN amount END"
)


def _replace_check(name: str, table: str, condition: str) -> None:
    op.drop_constraint(name, table, type_="check")
    op.create_check_constraint(name, table, condition)


def upgrade() -> None:
    _replace_check(
        "ck_events_state", "events", "state IN ('created', 'active', 'finished', 'cancelled')"
    )
    _replace_check(
        "ck_bets_state", "bets", "state IN ('none', 'winning', 'losing', 'win', 'lose', 'void')"
    )
    op.add_column("bets", sa.Column("payout", sa.Numeric(24, 2), nullable=True))
    op.execute(f"UPDATE bets SET payout = {PAYOUT_OF_STATE} WHERE state IN ('win', 'lose')")
    op.create_check_constraint(
        "ck_bets_payout", "bets", f"payout IS NOT DISTINCT FROM ({PAYOUT_OF_STATE})"
    )


def downgrade() -> None:
    # Refused by the restored checks while a cancelled event or a void bet exists: 0001 has
    # no way to say what they are.
    op.drop_constraint("ck_bets_payout", "bets", type_="check")
    op.drop_column("bets", "payout")
    _replace_check("ck_bets_state", "bets", "state IN ('none', 'winning', 'losing', 'win', 'lose')")
    _replace_check("ck_events_state", "events", "state IN ('created', 'active', 'finished')")
