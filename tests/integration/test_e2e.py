"""A whole match through HTTP alone, and one called off while live, across the two servers:
events through the line provider, bets through the bet maker, each at its own address;
functions, database, broker, all real."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from betting.auth import Role
from betting.db import get_engine
from betting.domain import BetState, EventState, Market, Score, score_bet
from betting.models import Bet
from tests.integration.conftest import (
    Functions,
    bearer,
    event_over_http,
    publish_event,
    wait_for,
)

pytestmark = pytest.mark.e2e

ODDS = {"team_1": "2.15", "team_2": "3.40", "draw": "2.95"}
STAKES = {"ana": "10.00", "ben": "7.35", "chloe": "0.99"}


def players() -> dict[str, dict[str, str]]:
    """Each player's Authorization header (tokens are minted once the test settings apply)."""
    return {name: bearer(Role.PLAYER, name) for name in STAKES}


def operator() -> dict[str, str]:
    return bearer(Role.OPERATOR, "operator-1")


def paid(state: BetState, amount: Decimal, potential: Decimal) -> Decimal | None:
    """What a bet in `state` pays, written out from the HTTP contract rather than the domain."""
    return {BetState.WIN: potential, BetState.LOSE: Decimal("0.00"), BetState.VOID: amount}.get(
        state
    )


def _publish_match(line_provider_url: str) -> str:
    kickoff = datetime.now(UTC) + timedelta(hours=2)
    return publish_event(
        line_provider_url,
        operator(),
        team_1="Feyenoord",
        team_2="Ajax",
        event_date=kickoff.isoformat(),
        deadline=(kickoff - timedelta(minutes=5)).isoformat(),
        odds=ODDS,
    )


def _bet_on_every_market(bet_maker_url: str, event_id: str) -> list[dict[str, Any]]:
    """Each player backs every market, at the odds they were shown."""
    bets: list[dict[str, Any]] = []
    for player, headers in players().items():
        for market in Market:
            body = {
                "event_id": event_id,
                "market": market.value,
                "amount": STAKES[player],
                "odds": ODDS[market.value],
            }
            response = httpx.post(f"{bet_maker_url}/bets", headers=headers, json=body)
            assert response.status_code == 201, response.text
            bets.append({**response.json(), "player": player})
    return bets


def _check_bets(
    bet_maker_url: str, event_id: str, bets: list[dict[str, Any]], state: EventState, score: str
) -> None:
    """Wait until every player sees their bets in the state and with the payout expected."""

    expected = {}
    for bet in bets:
        bet_state = score_bet(Market(bet["market"]), state, Score.parse(score))
        payout = paid(bet_state, Decimal(bet["amount"]), Decimal(bet["potential_payout"]))
        expected[bet["id"]] = (bet_state.value, None if payout is None else f"{payout:.2f}")

    def current() -> dict[str, tuple[str, str | None]]:
        seen = {}
        for player, headers in players().items():
            page = httpx.get(
                f"{bet_maker_url}/bets", headers=headers, params={"event_id": event_id}
            ).json()
            assert page["total"] == len(Market)
            for bet in page["items"]:
                assert bet["user_id"] == player
                stake, odds = Decimal(bet["amount"]), Decimal(ODDS[bet["market"]])
                potential = (stake * odds).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
                assert bet["potential_payout"] == f"{potential:.2f}"
                assert bet["odds"] == ODDS[bet["market"]]
                seen[bet["id"]] = (bet["state"], bet["payout"])
        return seen

    wait_for(lambda: current() == expected, 30, f"bets at {state} {score}")


def _assert_every_stored_payout_matches_its_state() -> None:
    """Over every bet row in the database, not only this test's."""
    with Session(get_engine()) as session:
        rows = session.exec(select(Bet)).all()
    assert rows
    for bet in rows:
        expected = paid(BetState(bet.state), bet.amount, bet.potential_payout)
        assert bet.payout == expected, (bet.id, bet.state, bet.payout)


@dataclass(frozen=True)
class Match:
    """A match published through the line provider, and every player's bets on it."""

    event_id: str
    bets: list[dict[str, Any]]


@pytest.fixture
def match(line_provider_url: str, bet_maker_url: str, functions: Functions) -> Match:
    event_id = _publish_match(line_provider_url)
    return Match(event_id, _bet_on_every_market(bet_maker_url, event_id))


def test_a_whole_match_across_the_line_provider_and_the_bet_maker(
    match: Match, line_provider_url: str, bet_maker_url: str
) -> None:
    event_id, bets = match.event_id, match.bets

    def check_bets(state: EventState, score: str) -> None:
        _check_bets(bet_maker_url, event_id, bets, state, score)

    check_bets(EventState.CREATED, "0-0")
    assert {bet["state"] for bet in bets} == {BetState.NONE.value}
    assert {bet["payout"] for bet in bets} == {None}

    steps: list[tuple[dict[str, str], EventState, str]] = [
        ({"state": "active"}, EventState.ACTIVE, "0-0"),
        ({"score": "1-0"}, EventState.ACTIVE, "1-0"),
        ({"score": "1-2"}, EventState.ACTIVE, "1-2"),
        ({"score": "3-2"}, EventState.ACTIVE, "3-2"),
        ({"state": "finished", "score": "3-3"}, EventState.FINISHED, "3-3"),
    ]
    for change, state, score in steps:
        response = httpx.patch(
            f"{line_provider_url}/events/{event_id}", headers=operator(), json=change
        )
        assert response.status_code == 202, response.text
        event_over_http(line_provider_url, event_id, state=state.value, score=score)
        check_bets(state, score)

    late = httpx.post(
        f"{bet_maker_url}/bets",
        headers=players()["ana"],
        json={"event_id": event_id, "market": "draw", "amount": "1.00"},
    )
    assert late.status_code == 409
    # 3-3: every draw bet won its potential payout, every other bet paid 0.00.
    _assert_every_stored_payout_matches_its_state()


def test_a_match_called_off_while_live_voids_every_bet_and_pays_the_stakes_back(
    match: Match, line_provider_url: str, bet_maker_url: str
) -> None:
    event_id, bets = match.event_id, match.bets
    url = f"{line_provider_url}/events/{event_id}"

    for change, score in [({"state": "active"}, "0-0"), ({"score": "1-0"}, "1-0")]:
        assert httpx.patch(url, headers=operator(), json=change).status_code == 202
        event_over_http(line_provider_url, event_id, state="active", score=score)
    _check_bets(bet_maker_url, event_id, bets, EventState.ACTIVE, "1-0")

    cancelled = httpx.patch(url, headers=operator(), json={"state": "cancelled"})
    assert cancelled.status_code == 202, cancelled.text
    event_over_http(line_provider_url, event_id, state="cancelled", score="1-0")
    _check_bets(bet_maker_url, event_id, bets, EventState.CANCELLED, "1-0")
    for headers in players().values():
        page = httpx.get(f"{bet_maker_url}/bets", headers=headers, params={"event_id": event_id})
        assert {(b["state"], b["payout"] == b["amount"]) for b in page.json()["items"]} == {
            ("void", True)
        }

    # Final: no change, no bet, no delete (its bets are history).
    for change in ({"state": "finished"}, {"score": "2-0"}, {"state": "cancelled"}):
        assert httpx.patch(url, headers=operator(), json=change).status_code == 409
    late = httpx.post(
        f"{bet_maker_url}/bets",
        headers=players()["ben"],
        json={"event_id": event_id, "market": "team_1", "amount": "5.00"},
    )
    assert late.status_code == 409
    assert httpx.delete(url, headers=operator()).status_code == 409
    _assert_every_stored_payout_matches_its_state()
