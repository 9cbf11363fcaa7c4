"""The bet maker's API, /bets, against the bet maker alone."""

import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from betting.auth import Role
from betting.db import get_engine
from betting.models import Bet, Event, IdempotencyKey
from betting.settings import get_settings
from tests.api.conftest import Caller, EditEvent, MakeBet, MakeCaller, MakeEvent, soon


@pytest.fixture
def client(bet_maker: TestClient) -> TestClient:
    return bet_maker


def count_bets(**where: Any) -> int:
    with Session(get_engine()) as session:
        statement = select(func.count()).select_from(Bet)
        for name, value in where.items():
            statement = statement.where(getattr(Bet, name) == value)
        return session.exec(statement).one()


# --- POST /bets ---------------------------------------------------------------------------


def test_a_player_bets_at_the_events_current_odds(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event()

    response = client.post(
        "/bets",
        json={"event_id": str(event.id), "market": "team_2", "amount": "20.00"},
        headers=player.headers,
    )

    assert response.status_code == 201, response.text
    bet = response.json()
    assert response.headers["location"] == f"/bets/{bet['id']}"
    assert bet["user_id"] == player.id
    assert bet["event_id"] == str(event.id)
    assert bet["market"] == "team_2"
    assert bet["odds"] == "2.10"
    assert bet["potential_payout"] == "42.00"
    assert bet["state"] == "none"
    assert bet["payout"] is None
    assert client.get(response.headers["location"], headers=player.headers).json() == bet


@pytest.mark.parametrize(
    ("odds", "bet", "answered"),
    [
        pytest.param(
            {"odds_draw": 1.33},
            {"market": "draw", "amount": "10.01"},
            ("10.01", "1.33", "13.31"),
            id="payout-rounded-down-to-the-cent",
        ),
        pytest.param(
            {"odds_team_1": 2},
            {"market": "team_1", "amount": 10},
            ("10.00", "2.00", "20.00"),
            id="money-as-strings-with-two-places",
        ),
    ],
)
def test_money_is_answered_as_strings_and_the_payout_rounded_down(
    client: TestClient,
    player: Caller,
    make_event: MakeEvent,
    odds: dict[str, Any],
    bet: dict[str, Any],
    answered: tuple[str, str, str],
) -> None:
    event = make_event(**odds)

    response = client.post("/bets", json={"event_id": str(event.id), **bet}, headers=player.headers)

    shown = response.json()
    assert (shown["amount"], shown["odds"], shown["potential_payout"]) == answered


@pytest.mark.parametrize("which", ["unknown", "deleted"])
def test_betting_on_an_unknown_or_deleted_event_is_404(
    client: TestClient, player: Caller, make_event: MakeEvent, which: str
) -> None:
    event_id = uuid.uuid4() if which == "unknown" else make_event(deleted_at=datetime.now(UTC)).id

    response = client.post(
        "/bets",
        json={"event_id": str(event_id), "market": "draw", "amount": "1"},
        headers=player.headers,
    )

    assert response.status_code == 404


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"state": "active"}, id="active"),
        pytest.param({"state": "finished"}, id="finished"),
        pytest.param({"state": "cancelled"}, id="cancelled"),
        pytest.param({"event_date": soon(hours=1), "deadline": soon(seconds=-1)}, id="deadline"),
    ],
)
def test_a_bet_on_a_closed_event_is_refused(
    client: TestClient, player: Caller, make_event: MakeEvent, event: dict[str, Any]
) -> None:
    closed = make_event(**event)

    response = client.post(
        "/bets",
        json={"event_id": str(closed.id), "market": "draw", "amount": "1"},
        headers=player.headers,
    )

    assert response.status_code == 409
    assert count_bets(event_id=closed.id) == 0


def test_a_bet_after_the_deadline_is_refused(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event(event_date=soon(days=1), deadline=soon(seconds=-30))

    response = client.post(
        "/bets",
        json={"event_id": str(event.id), "market": "team_1", "amount": "5"},
        headers=player.headers,
    )

    assert response.status_code == 409
    assert response.json() == {"detail": "betting on this event is closed"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"amount": "0"}, id="zero"),
        pytest.param({"amount": "-5"}, id="negative"),
        pytest.param({"amount": "1.001"}, id="3-decimals"),
        pytest.param({"amount": 1.005}, id="3-decimals-number"),
        pytest.param({"amount": "NaN"}, id="nan"),
        pytest.param({"market": "home"}, id="unknown-market"),
        pytest.param({"event_id": "42"}, id="malformed-event-id"),
        pytest.param({"user_id": "someone-else"}, id="user-id-in-body"),
        pytest.param({"state": "win"}, id="state-in-body"),
        pytest.param({"payout": "10"}, id="payout-in-body"),
        pytest.param({"odds": "0"}, id="zero-odds"),
        pytest.param({"odds": "1.855"}, id="3-decimal-odds"),
    ],
)
def test_an_invalid_bet_is_422(
    client: TestClient, player: Caller, make_event: MakeEvent, body: dict[str, Any]
) -> None:
    event = make_event()
    full = {"event_id": str(event.id), "market": "team_1", "amount": "10", **body}

    response = client.post("/bets", json=full, headers=player.headers)

    assert response.status_code == 422, response.text
    assert count_bets(event_id=event.id) == 0


def test_operators_may_not_place_bets(
    client: TestClient, operator: Caller, make_event: MakeEvent
) -> None:
    body = {"event_id": str(make_event().id), "market": "draw", "amount": "1"}

    assert client.post("/bets", json=body, headers=operator.headers).status_code == 403
    assert client.post("/bets", json=body).status_code == 401


def place_during_a_change(
    client: TestClient, player: Caller, body: dict[str, Any], **change: Any
) -> httpx.Response:
    """Place a bet while the event writer holds the event row to apply `change`."""
    answers: list[httpx.Response] = []
    with Session(get_engine()) as writer:
        # What the event writer does: lock the row, change it, commit.
        statement = select(Event).where(Event.id == uuid.UUID(body["event_id"]))
        row = writer.exec(statement.with_for_update()).one()
        placing = threading.Thread(
            target=lambda: answers.append(client.post("/bets", json=body, headers=player.headers))
        )
        placing.start()
        placing.join(timeout=0.5)
        assert placing.is_alive(), "the bet did not wait for the event row"
        for name, value in change.items():
            setattr(row, name, value)
        writer.add(row)
        writer.commit()
    placing.join(timeout=10)
    [answer] = answers
    return answer


def test_a_bet_waits_for_a_transition_in_flight_and_is_then_refused(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event()
    body = {"event_id": str(event.id), "market": "draw", "amount": "1"}

    answer = place_during_a_change(client, player, body, state="active")

    assert answer.status_code == 409
    assert count_bets(event_id=event.id) == 0


# --- The price the player saw ------------------------------------------------------------


def _odds_refused(market: str, odds: str) -> dict[str, Any]:
    message = f"the odds for {market} have changed: bet again at the current odds"
    return {"detail": {"message": message, "market": market, "odds": odds}}


@pytest.mark.parametrize("seen", ["3.40", 3.4, "3.4"])
def test_a_bet_at_the_odds_the_player_saw_is_taken(
    client: TestClient, player: Caller, make_event: MakeEvent, seen: Any
) -> None:
    event = make_event(odds_draw=Decimal("3.40"))
    body = {"event_id": str(event.id), "market": "draw", "amount": "10", "odds": seen}

    response = client.post("/bets", json=body, headers=player.headers)

    assert response.status_code == 201, response.text
    assert (response.json()["odds"], response.json()["potential_payout"]) == ("3.40", "34.00")


def test_a_bet_at_odds_that_have_moved_is_409_with_the_current_odds(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event(odds_team_1=Decimal("1.85"), odds_team_2=Decimal("2.10"))
    # The player saw team_2's old price; team_1's current price is no excuse.
    body = {"event_id": str(event.id), "market": "team_2", "amount": "10", "odds": "1.85"}

    response = client.post("/bets", json=body, headers=player.headers)

    assert response.status_code == 409
    assert response.json() == _odds_refused("team_2", "2.10")
    assert count_bets(event_id=event.id) == 0


def test_a_closed_event_is_409_whatever_the_odds_sent(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event(state="cancelled")
    body = {"event_id": str(event.id), "market": "draw", "amount": "1", "odds": "9.99"}

    response = client.post("/bets", json=body, headers=player.headers)

    assert response.status_code == 409
    assert response.json() == {"detail": "betting on this event is closed"}


def test_a_bet_waits_for_an_odds_change_in_flight_and_is_then_refused_at_the_old_price(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event(odds_draw=Decimal("3.40"))
    body = {"event_id": str(event.id), "market": "draw", "amount": "1", "odds": "3.40"}

    answer = place_during_a_change(client, player, body, odds_draw=Decimal("2.90"))

    assert (answer.status_code, answer.json()) == (409, _odds_refused("draw", "2.90"))
    assert count_bets(event_id=event.id) == 0


def _assert_refused_as_another_request(response: httpx.Response, event_id: uuid.UUID) -> None:
    """A reused Idempotency-Key with another body: 422 on the header, and no second bet."""
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
    assert count_bets(event_id=event_id) == 1


def test_the_odds_sent_are_part_of_what_an_idempotency_key_names(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event(odds_team_1=Decimal("1.85"))
    headers = {**player.headers, "Idempotency-Key": f"odds-{uuid.uuid4()}"}
    body = {"event_id": str(event.id), "market": "team_1", "amount": "5"}
    first = client.post("/bets", json={**body, "odds": "1.85"}, headers=headers)

    same = client.post("/bets", json={**body, "odds": 1.85}, headers=headers)
    without = client.post("/bets", json=body, headers=headers)

    assert first.status_code == same.status_code == 201
    assert same.json()["id"] == first.json()["id"]
    _assert_refused_as_another_request(without, event.id)


# --- Idempotency-Key ----------------------------------------------------------------------


def test_the_same_key_and_body_return_the_same_bet(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event()
    headers = {**player.headers, "Idempotency-Key": "retry-1"}

    first = client.post(
        "/bets",
        json={"event_id": str(event.id), "market": "team_1", "amount": "10"},
        headers=headers,
    )
    # The same request, spelt differently.
    second = client.post(
        "/bets",
        json={"amount": 10.0, "market": "team_1", "event_id": str(event.id).upper()},
        headers=headers,
    )

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert count_bets(event_id=event.id) == 1


def test_the_same_key_with_another_body_is_422(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event()
    headers = {**player.headers, "Idempotency-Key": "retry-2"}
    client.post(
        "/bets", json={"event_id": str(event.id), "market": "draw", "amount": "5"}, headers=headers
    )

    response = client.post(
        "/bets", json={"event_id": str(event.id), "market": "draw", "amount": "6"}, headers=headers
    )

    _assert_refused_as_another_request(response, event.id)


@pytest.mark.parametrize(
    ("sent", "change"),
    [
        ({"market": "team_1", "odds": "1.85"}, {"odds_team_1": Decimal("1.60")}),
        ({"market": "draw"}, {"state": "active"}),
    ],
    ids=["the-odds-have-moved", "betting-has-closed"],
)
def test_a_replay_returns_the_bet_even_once_the_event_has_moved_on(
    client: TestClient,
    player: Caller,
    make_event: MakeEvent,
    edit_event: EditEvent,
    sent: dict[str, str],
    change: dict[str, Any],
) -> None:
    event = make_event(odds_team_1=Decimal("1.85"))
    headers = {**player.headers, "Idempotency-Key": f"replay-{uuid.uuid4()}"}
    body = {"event_id": str(event.id), "amount": "5", **sent}
    first = client.post("/bets", json=body, headers=headers)
    edit_event(event.id, **change)

    replay = client.post("/bets", json=body, headers=headers)

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()


def _keyed_bet(
    client: TestClient, player: Caller, event: Event, prefix: str
) -> tuple[dict[str, str], dict[str, str], httpx.Response]:
    """A draw bet of 5 on `event` under a fresh key: its headers, body and answer."""
    headers = {**player.headers, "Idempotency-Key": f"{prefix}-{uuid.uuid4()}"}
    body = {"event_id": str(event.id), "market": "draw", "amount": "5"}
    return headers, body, client.post("/bets", json=body, headers=headers)


def test_a_replay_after_the_bet_was_withdrawn_places_no_second_bet(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event()
    headers, body, first = _keyed_bet(client, player, event, "withdrawn")
    assert client.delete(f"/bets/{first.json()['id']}", headers=player.headers).status_code == 204

    replay = client.post("/bets", json=body, headers=headers)

    assert replay.status_code == 409, replay.text
    assert "withdrawn" in replay.json()["detail"]
    listed = client.get("/bets", params={"event_id": str(event.id)}, headers=player.headers)
    assert listed.json()["total"] == 0


def _age_keys(seconds: float, *, user_id: str | None = None) -> None:
    """Make the keys (of `user_id`, or every player's) `seconds` older than they are."""
    statement = update(IdempotencyKey).values(
        created_at=IdempotencyKey.created_at - timedelta(seconds=seconds)
    )
    if user_id is not None:
        statement = statement.where(col(IdempotencyKey.user_id) == user_id)
    with Session(get_engine()) as session:
        session.exec(statement)
        session.commit()


def _stored_keys(user_id: str) -> list[str]:
    with Session(get_engine()) as session:
        query = select(IdempotencyKey.key).where(IdempotencyKey.user_id == user_id)
        return list(session.exec(query))


@pytest.mark.parametrize("amount", ["5", "6"], ids=["same-body", "another-body"])
def test_a_key_older_than_its_lifetime_is_a_new_key(
    client: TestClient, player: Caller, make_event: MakeEvent, amount: str
) -> None:
    event = make_event()
    headers = {**player.headers, "Idempotency-Key": f"expired-{uuid.uuid4()}"}
    first = client.post(
        "/bets", json={"event_id": str(event.id), "market": "draw", "amount": "5"}, headers=headers
    )
    _age_keys(get_settings().idempotency_key_ttl_s + 1, user_id=player.id)

    again = client.post(
        "/bets",
        json={"event_id": str(event.id), "market": "draw", "amount": amount},
        headers=headers,
    )

    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] != first.json()["id"]
    assert count_bets(event_id=event.id) == 2
    # The key now names the new bet: a replay returns it.
    replay = client.post(
        "/bets",
        json={"event_id": str(event.id), "market": "draw", "amount": amount},
        headers=headers,
    )
    assert replay.json()["id"] == again.json()["id"]


def test_a_key_within_its_lifetime_still_replays(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event()
    headers, body, first = _keyed_bet(client, player, event, "kept")
    _age_keys(get_settings().idempotency_key_ttl_s - 60, user_id=player.id)

    replay = client.post("/bets", json=body, headers=headers)

    assert replay.json()["id"] == first.json()["id"]
    assert count_bets(event_id=event.id) == 1


def test_placing_with_a_key_purges_other_players_expired_keys(
    client: TestClient, make_caller: MakeCaller, make_event: MakeEvent
) -> None:
    event = make_event()
    body = {"event_id": str(event.id), "market": "draw", "amount": "5"}
    gone, kept, placing = make_caller(), make_caller(), make_caller()
    for caller in (gone, kept):
        headers = {**caller.headers, "Idempotency-Key": "old"}
        assert client.post("/bets", json=body, headers=headers).status_code == 201
    _age_keys(get_settings().idempotency_key_ttl_s + 1, user_id=gone.id)

    headers = {**placing.headers, "Idempotency-Key": "new"}
    assert client.post("/bets", json=body, headers=headers).status_code == 201

    assert _stored_keys(gone.id) == []
    assert _stored_keys(kept.id) == ["old"]


def test_keys_belong_to_one_player(
    client: TestClient, make_caller: MakeCaller, make_event: MakeEvent
) -> None:
    event = make_event()
    body = {"event_id": str(event.id), "market": "draw", "amount": "5"}
    alice, bob = make_caller(), make_caller()

    a = client.post("/bets", json=body, headers={**alice.headers, "Idempotency-Key": "k"})
    b = client.post("/bets", json=body, headers={**bob.headers, "Idempotency-Key": "k"})

    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\tkey"])
def test_an_empty_overlong_or_unprintable_key_is_422(
    client: TestClient, player: Caller, make_event: MakeEvent, key: str
) -> None:
    body = {"event_id": str(make_event().id), "market": "draw", "amount": "5"}

    response = client.post("/bets", json=body, headers={**player.headers, "Idempotency-Key": key})

    assert response.status_code == 422


def test_concurrent_requests_with_one_key_create_one_bet(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event()
    body = {"event_id": str(event.id), "market": "team_2", "amount": "3.50"}
    headers = {**player.headers, "Idempotency-Key": f"race-{uuid.uuid4()}"}
    start = threading.Barrier(10)
    responses: list[httpx.Response] = []

    def place() -> None:
        start.wait()
        responses.append(client.post("/bets", json=body, headers=headers))

    threads = [threading.Thread(target=place) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status_code for r in responses] == [201] * 10
    assert len({r.json()["id"] for r in responses}) == 1
    assert count_bets(event_id=event.id) == 1


# --- GET /bets ----------------------------------------------------------------------------


def test_a_player_sees_only_their_own_bets(
    client: TestClient, make_caller: MakeCaller, make_event: MakeEvent, make_bet: MakeBet
) -> None:
    event = make_event()
    alice, bob = make_caller(), make_caller()
    alices = make_bet(alice, event_id=str(event.id))
    bobs = make_bet(bob, event_id=str(event.id))

    page = client.get("/bets", params={"event_id": str(event.id)}, headers=alice.headers).json()
    snooping = client.get(
        "/bets", params={"user_id": bob.id, "event_id": str(event.id)}, headers=alice.headers
    ).json()

    assert page == {"items": [alices], "total": 1}
    assert snooping == {"items": [], "total": 0}
    assert client.get(f"/bets/{bobs['id']}", headers=alice.headers).status_code == 404


def test_an_operator_sees_every_bet_and_filters_by_user(
    client: TestClient,
    operator: Caller,
    make_caller: MakeCaller,
    make_event: MakeEvent,
    make_bet: MakeBet,
) -> None:
    event = make_event()
    alice, bob = make_caller(), make_caller()
    alices = make_bet(alice, event_id=str(event.id))
    bobs = make_bet(bob, event_id=str(event.id))

    everyone = client.get("/bets", params={"event_id": str(event.id)}, headers=operator.headers)
    only_bob = client.get("/bets", params={"user_id": bob.id}, headers=operator.headers)

    assert everyone.json() == {"items": [alices, bobs], "total": 2}
    assert only_bob.json() == {"items": [bobs], "total": 1}
    assert client.get(f"/bets/{alices['id']}", headers=operator.headers).json() == alices


def test_the_bet_list_filters_and_paginates_with_a_total(
    client: TestClient, player: Caller, make_event: MakeEvent, make_bet: MakeBet
) -> None:
    event = make_event()
    placed = [make_bet(event_id=str(event.id), market=m) for m in ("team_1", "draw", "draw")]
    make_bet()  # on another event

    draws = client.get(
        "/bets", params={"event_id": str(event.id), "market": "draw"}, headers=player.headers
    ).json()
    second = client.get(
        "/bets",
        params={"event_id": str(event.id), "limit": 1, "offset": 1},
        headers=player.headers,
    ).json()
    beyond = client.get(
        "/bets", params={"event_id": str(event.id), "offset": 3}, headers=player.headers
    ).json()
    scored = client.get("/bets", params={"state": "win"}, headers=player.headers).json()

    assert draws == {"items": placed[1:], "total": 2}
    assert second == {"items": [placed[1]], "total": 3}
    assert beyond == {"items": [], "total": 3}  # past the last page the total still holds
    assert scored == {"items": [], "total": 0}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"market": "home"},
        {"event_id": "x"},
        {"user_id": "a\x00b"},
    ],
)
def test_bad_bet_list_parameters_are_422(
    client: TestClient, player: Caller, params: dict[str, Any]
) -> None:
    assert client.get("/bets", params=params, headers=player.headers).status_code == 422


@pytest.mark.parametrize(
    ("state", "payout"),
    [("winning", None), ("win", "18.50"), ("lose", "0.00"), ("void", "10.00")],
)
def test_a_bet_shows_what_it_paid_once_settled(
    client: TestClient, player: Caller, make_bet: MakeBet, state: str, payout: str | None
) -> None:
    bet = make_bet(market="team_1", amount="10")  # at 1.85: 18.50 if it wins
    with Session(get_engine()) as session:
        # What the bet writer does: the state and what it pays, in one write.
        stored = session.get(Bet, uuid.UUID(bet["id"]))
        assert stored is not None
        stored.state = state
        stored.payout = None if payout is None else Decimal(payout)
        session.add(stored)
        session.commit()

    shown = client.get(f"/bets/{bet['id']}", headers=player.headers).json()
    listed = client.get("/bets", params={"state": state}, headers=player.headers).json()

    assert (shown["state"], shown["payout"]) == (state, payout)
    assert listed == {"items": [shown], "total": 1}


def test_reading_bets_needs_a_token(client: TestClient) -> None:
    assert client.get("/bets").status_code == 401
    assert client.get(f"/bets/{uuid.uuid4()}").status_code == 401


def test_an_unknown_or_malformed_bet_id(client: TestClient, player: Caller) -> None:
    assert client.get(f"/bets/{uuid.uuid4()}", headers=player.headers).status_code == 404
    assert client.get("/bets/123", headers=player.headers).status_code == 422


# --- PATCH /bets/{id} ---------------------------------------------------------------------


def test_changing_the_amount_keeps_the_odds_and_recomputes_the_payout(
    client: TestClient, player: Caller, make_bet: MakeBet
) -> None:
    bet = make_bet(market="team_1", amount="10")

    response = client.patch(f"/bets/{bet['id']}", json={"amount": "7.77"}, headers=player.headers)

    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["amount"] == "7.77"
    assert changed["odds"] == "1.85"
    assert changed["potential_payout"] == "14.37"  # 14.3745 rounded down
    assert changed["updated_at"] > bet["updated_at"]
    assert changed["date_created"] == bet["date_created"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"amount": "5", "market": "draw"}, id="market"),
        pytest.param({"amount": "5", "state": "win"}, id="state"),
        pytest.param({"state": "win"}, id="state-only"),
        pytest.param({"amount": "0"}, id="zero"),
        pytest.param({}, id="empty"),
    ],
)
def test_a_bet_change_naming_anything_but_a_valid_amount_is_422(
    client: TestClient, player: Caller, make_bet: MakeBet, body: dict[str, Any]
) -> None:
    bet = make_bet()

    response = client.patch(f"/bets/{bet['id']}", json=body, headers=player.headers)

    assert response.status_code == 422
    assert client.get(f"/bets/{bet['id']}", headers=player.headers).json() == bet


def test_only_the_owner_may_change_or_withdraw_a_bet(
    client: TestClient, make_caller: MakeCaller, make_bet: MakeBet
) -> None:
    bet = make_bet()
    other = make_caller()
    operator = make_caller(Role.OPERATOR)
    url = f"/bets/{bet['id']}"

    assert client.patch(url, json={"amount": "1"}, headers=other.headers).status_code == 404
    assert client.delete(url, headers=other.headers).status_code == 404
    assert client.patch(url, json={"amount": "1"}, headers=operator.headers).status_code == 403
    assert client.delete(url, headers=operator.headers).status_code == 403
    assert client.patch(url, json={"amount": "1"}).status_code == 401
    assert count_bets(id=uuid.UUID(bet["id"]), amount=10) == 1


# --- DELETE /bets/{id} --------------------------------------------------------------------


def test_a_bet_is_withdrawn_while_the_event_is_open(
    client: TestClient, player: Caller, make_bet: MakeBet
) -> None:
    bet = make_bet()

    response = client.delete(f"/bets/{bet['id']}", headers=player.headers)

    assert response.status_code == 204
    assert count_bets(id=uuid.UUID(bet["id"])) == 0
    assert client.get(f"/bets/{bet['id']}", headers=player.headers).status_code == 404
    assert client.delete(f"/bets/{bet['id']}", headers=player.headers).status_code == 404


@pytest.mark.parametrize(
    ("closing", "action"),
    [
        pytest.param({"state": "active"}, "change", id="change-once-started"),
        pytest.param({"deadline": soon(seconds=-1)}, "withdraw", id="withdraw-after-deadline"),
    ],
)
def test_changing_or_withdrawing_a_bet_once_betting_has_closed_is_409(
    client: TestClient,
    player: Caller,
    make_event: MakeEvent,
    make_bet: MakeBet,
    edit_event: EditEvent,
    closing: dict[str, Any],
    action: str,
) -> None:
    event = make_event()
    bet = make_bet(event_id=str(event.id))
    edit_event(event.id, **closing)
    url = f"/bets/{bet['id']}"

    if action == "change":
        response = client.patch(url, json={"amount": "99"}, headers=player.headers)
    else:
        response = client.delete(url, headers=player.headers)

    assert response.status_code == 409
    # Still there, unchanged.
    assert client.get(url, headers=player.headers).json()["amount"] == "10.00"


# --- OpenAPI ------------------------------------------------------------------------------


def test_the_openapi_document_shows_payouts_void_bets_and_the_odds_refusal(
    client: TestClient,
) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]

    bet = schemas["BetPublic"]
    assert "payout" in bet["required"]
    assert {"type": "null"} in bet["properties"]["payout"]["anyOf"]
    assert "void" in schemas["BetState"]["enum"]
    assert "odds" in schemas["BetCreate"]["properties"]
    assert "odds" not in schemas["BetCreate"].get("required", [])
    refused = spec["paths"]["/bets"]["post"]["responses"]["409"]
    shapes = refused["content"]["application/json"]["schema"]["anyOf"]
    assert {shape["$ref"].rsplit("/", 1)[1] for shape in shapes} == {"Problem", "OddsChanged"}
    assert set(schemas["OddsChangedDetail"]["required"]) == {"message", "market", "odds"}
