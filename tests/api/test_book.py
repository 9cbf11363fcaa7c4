"""The operator's book: GET /events/{id}/book, on the line provider."""

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, col, select

from betting.db import get_engine, settle_bets
from betting.domain import Score
from betting.models import Bet, Event
from tests.api.conftest import Caller, EditEvent, MakeBet, MakeCaller, MakeEvent

# Odds 1.85 / 2.10 / 3.40 (make_event's), so potential payouts: 18.50, 9.25, 42.00, 34.00.
STAKES = [("team_1", "10.00"), ("team_1", "5.00"), ("team_2", "20.00"), ("draw", "10.00")]


@pytest.fixture
def client(line_provider: TestClient) -> TestClient:
    return line_provider


def book(client: TestClient, operator: Caller, event_id: uuid.UUID) -> dict[str, Any]:
    response = client.get(f"/events/{event_id}/book", headers=operator.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def settle(edit_event: EditEvent, event: Event, state: str, score: str) -> None:
    """Move the event and give its bets the states and payouts that says, as the pipeline
    would (the rebase's own settle)."""
    edit_event(event.id, state=state, score=Score.parse(score))
    with Session(get_engine()) as session:
        stored = session.get(Event, event.id)
        assert stored is not None
        settle_bets(session, event.id, stored.to_facts())
        session.commit()


def stored_payouts(event_id: uuid.UUID) -> Decimal:
    with Session(get_engine()) as session:
        query = select(func.sum(Bet.payout)).where(col(Bet.event_id) == event_id)
        total = session.exec(query).one()
    assert total is not None, "no bet is settled"
    return total


@pytest.fixture
def event_with_bets(
    make_event: MakeEvent, make_bet: MakeBet, make_caller: MakeCaller
) -> tuple[Event, list[dict[str, Any]]]:
    event = make_event()
    bets = [
        make_bet(make_caller(), event_id=str(event.id), market=market, amount=amount)
        for market, amount in STAKES
    ]
    return event, bets


def test_the_book_sums_the_bets_per_market_and_says_what_each_outcome_leaves_the_operator(
    client: TestClient, operator: Caller, event_with_bets: tuple[Event, list[dict[str, Any]]]
) -> None:
    event, _ = event_with_bets

    assert book(client, operator, event.id) == {
        "event_id": str(event.id),
        "state": "created",
        "score": "0-0",
        "bets": 4,
        "stake": "45.00",
        "markets": {
            "team_1": {"bets": 2, "stake": "15.00", "potential_payout": "27.75"},
            "team_2": {"bets": 1, "stake": "20.00", "potential_payout": "42.00"},
            "draw": {"bets": 1, "stake": "10.00", "potential_payout": "34.00"},
        },
        "result_if": {"team_1": "17.25", "team_2": "3.00", "draw": "11.00"},
        "result": None,
    }


def test_an_event_without_bets_has_an_empty_book(
    client: TestClient, operator: Caller, make_event: MakeEvent
) -> None:
    event = make_event()

    body = book(client, operator, event.id)

    assert (body["bets"], body["stake"], body["result"]) == (0, "0.00", None)
    assert body["markets"]["draw"] == {"bets": 0, "stake": "0.00", "potential_payout": "0.00"}
    assert body["result_if"] == {"team_1": "0.00", "team_2": "0.00", "draw": "0.00"}


def test_a_changed_stake_and_a_withdrawn_bet_move_the_book(
    client: TestClient,
    bet_maker: TestClient,
    operator: Caller,
    make_caller: MakeCaller,
    make_event: MakeEvent,
    make_bet: MakeBet,
) -> None:
    event = make_event()
    player = make_caller()
    kept = make_bet(player, event_id=str(event.id), market="draw", amount="10.00")
    dropped = make_bet(player, event_id=str(event.id), market="team_2", amount="20.00")

    changed = bet_maker.patch(
        f"/bets/{kept['id']}", json={"amount": "4.00"}, headers=player.headers
    )
    assert changed.status_code == 200
    assert bet_maker.delete(f"/bets/{dropped['id']}", headers=player.headers).status_code == 204

    body = book(client, operator, event.id)
    assert body["markets"]["draw"] == {"bets": 1, "stake": "4.00", "potential_payout": "13.60"}
    assert body["markets"]["team_2"] == {"bets": 0, "stake": "0.00", "potential_payout": "0.00"}
    assert (body["bets"], body["stake"]) == (1, "4.00")
    assert body["result_if"] == {"team_1": "4.00", "team_2": "4.00", "draw": "-9.60"}


BookAfter = Callable[..., tuple[Event, dict[str, Any]]]


@pytest.fixture
def book_after(
    client: TestClient,
    operator: Caller,
    edit_event: EditEvent,
    event_with_bets: tuple[Event, list[dict[str, Any]]],
) -> BookAfter:
    """`book_after(("active", "1-0"), ...)`: the event with bets moved through those (state,
    score) steps, its bets settled at each as the pipeline would; then its book."""

    def after(*steps: tuple[str, str]) -> tuple[Event, dict[str, Any]]:
        event, _ = event_with_bets
        for state, score in steps:
            settle(edit_event, event, state, score)
        return event, book(client, operator, event.id)

    return after


def test_a_live_match_keeps_the_book_open(book_after: BookAfter) -> None:
    _, body = book_after(("active", "1-0"))

    assert (body["state"], body["score"], body["result"]) == ("active", "1-0", None)
    assert body["result_if"] == {"team_1": "17.25", "team_2": "3.00", "draw": "11.00"}


def test_once_finished_the_result_is_every_stake_less_the_stored_payouts(
    book_after: BookAfter,
) -> None:
    event, body = book_after(("finished", "2-1"))

    # team_1 won: its two bets pay 27.75, the others nothing.
    assert body["result"] == "17.25" == body["result_if"]["team_1"]
    assert Decimal(body["result"]) == Decimal(body["stake"]) - stored_payouts(event.id)
    assert body["markets"]["team_1"] == {"bets": 2, "stake": "15.00", "potential_payout": "27.75"}


def test_once_cancelled_every_stake_goes_back_and_the_result_is_zero(
    book_after: BookAfter,
) -> None:
    event, body = book_after(("active", "1-0"), ("cancelled", "1-0"))

    assert (body["state"], body["result"]) == ("cancelled", "0.00")
    assert stored_payouts(event.id) == Decimal("45.00") == Decimal(body["stake"])


def test_the_book_is_for_operators_only(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event()

    assert client.get(f"/events/{event.id}/book").status_code == 401
    assert client.get(f"/events/{event.id}/book", headers=player.headers).status_code == 403


def test_the_book_of_an_unknown_or_deleted_event_is_404(
    client: TestClient, operator: Caller, make_event: MakeEvent
) -> None:
    deleted = make_event()
    assert client.delete(f"/events/{deleted.id}", headers=operator.headers).status_code == 204

    for event_id in (uuid.uuid4(), deleted.id):
        response = client.get(f"/events/{event_id}/book", headers=operator.headers)
        assert response.status_code == 404


def test_a_malformed_event_id_is_422(client: TestClient, operator: Caller) -> None:
    assert client.get("/events/not-a-uuid/book", headers=operator.headers).status_code == 422
