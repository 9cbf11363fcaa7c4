"""The bet maker (`betting bet-maker`): the bets API. It has no Kafka client and imports none
(a test and `lint-imports` hold it to that): bets go straight to Postgres, so a broker outage
never stops bet placement, and it is ready whenever Postgres answers."""

from betting.settings import get_settings
from gateway.app import create_app, serve
from gateway.routers import bets
from gateway.routers.ops import database_reachable

app = create_app(
    title="Bet maker",
    summary="Players bet on open events and follow their bets; operators see every bet.",
    routers=[bets.router],
    readiness={"database": database_reachable},
)


def main() -> None:
    """Serve the bets API (`betting bet-maker`)."""
    serve(app, get_settings().bet_maker_port)
