"""A whole match through HTTP alone, across the two servers: events through the line provider,
bets through the bet maker, each at its own address; functions, database, broker, all real."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
import pytest

from betting.auth import Role
from betting.domain import BetState, EventState, Market, Score, score_bet
from tests.integration.conftest import (
    bearer,
    event_over_http,
    publish_event,
    wait_for,
)

pytestmark = pytest.mark.e2e

ODDS = {"team_1": "2.15", "team_2": "3.40", "draw": "2.95"}
STAKES = {"ana": "10.00", "ben": "7.35", "chloe": "0.99"}


@pytest.mark.usefixtures("functions")
def test_a_whole_match_across_the_line_provider_and_the_bet_maker(
    line_provider_url: str, bet_maker_url: str
) -> None:
    operator = bearer(Role.OPERATOR, "operator-1")
    players = {name: bearer(Role.PLAYER, name) for name in ("ana", "ben", "chloe")}
    kickoff = datetime.now(UTC) + timedelta(hours=2)
    event_id = publish_event(
        line_provider_url,
        operator,
        team_1="Feyenoord",
        team_2="Ajax",
        event_date=kickoff.isoformat(),
        deadline=(kickoff - timedelta(minutes=5)).isoformat(),
        odds=ODDS,
    )

    bets: list[dict[str, Any]] = []
    for player, headers in players.items():
        for market in Market:
            response = httpx.post(
                f"{bet_maker_url}/bets",
                headers=headers,
                json={"event_id": event_id, "market": market.value, "amount": STAKES[player]},
            )
            assert response.status_code == 201, response.text
            bets.append({**response.json(), "player": player})

    def check_bets(state: EventState, score: str) -> None:
        expected = {
            bet["id"]: score_bet(Market(bet["market"]), state, Score.parse(score)).value
            for bet in bets
        }

        def current() -> dict[str, str]:
            seen = {}
            for player, headers in players.items():
                page = httpx.get(
                    f"{bet_maker_url}/bets", headers=headers, params={"event_id": event_id}
                ).json()
                assert page["total"] == len(Market)
                for bet in page["items"]:
                    assert bet["user_id"] == player
                    stake, odds = Decimal(bet["amount"]), Decimal(ODDS[bet["market"]])
                    payout = (stake * odds).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
                    assert bet["potential_payout"] == f"{payout:.2f}"
                    assert bet["odds"] == ODDS[bet["market"]]
                    seen[bet["id"]] = bet["state"]
            return seen

        wait_for(lambda: current() == expected, 30, f"bets at {state} {score}")

    check_bets(EventState.CREATED, "0-0")
    assert {bet["state"] for bet in bets} == {BetState.NONE.value}

    steps: list[tuple[dict[str, str], EventState, str]] = [
        ({"state": "active"}, EventState.ACTIVE, "0-0"),
        ({"score": "1-0"}, EventState.ACTIVE, "1-0"),
        ({"score": "1-2"}, EventState.ACTIVE, "1-2"),
        ({"score": "3-2"}, EventState.ACTIVE, "3-2"),
        ({"state": "finished", "score": "3-3"}, EventState.FINISHED, "3-3"),
    ]
    for change, state, score in steps:
        response = httpx.patch(
            f"{line_provider_url}/events/{event_id}", headers=operator, json=change
        )
        assert response.status_code == 202, response.text
        event_over_http(line_provider_url, event_id, state=state.value, score=score)
        check_bets(state, score)

    late = httpx.post(
        f"{bet_maker_url}/bets",
        headers=players["ana"],
        json={"event_id": event_id, "market": "draw", "amount": "1.00"},
    )
    assert late.status_code == 409
