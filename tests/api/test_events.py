"""The line provider's API, /events, against the line provider alone."""

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from betting.db import get_engine
from betting.domain import Score
from betting.messages import EventCreated, EventUpdated
from betting.models import Bet, Event
from tests.api.conftest import Caller, MakeEvent, Received, soon

ReadTopic = Callable[..., list[Received]]
StoreBet = Callable[..., Bet]


@pytest.fixture
def client(line_provider: TestClient) -> TestClient:
    return line_provider


def new_event(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "football",
        "team_1": "Ajax",
        "team_2": "PSV",
        "event_date": soon().isoformat(),
        "odds": {"team_1": "1.85", "team_2": 2.1, "draw": "3.40"},
    }
    return {**body, **overrides}


# --- POST /events -------------------------------------------------------------------------


def test_operator_creates_an_event_and_it_is_published(
    client: TestClient, operator: Caller, read_events_topic: ReadTopic
) -> None:
    event_date = soon(days=2)
    deadline = event_date - timedelta(hours=1)
    body = new_event(event_date=event_date.isoformat(), deadline=deadline.isoformat())

    response = client.post("/events", json=body, headers=operator.headers)

    assert response.status_code == 202, response.text
    event = response.json()
    event_id = uuid.UUID(event["id"])
    assert response.headers["location"] == f"/events/{event_id}"
    assert event["state"] == "created"
    assert event["score"] == "0-0"
    assert event["version"] is None
    assert event["odds"] == {"team_1": "1.85", "team_2": "2.10", "draw": "3.40"}
    [(key, message, _)] = read_events_topic(event_id)
    assert key == str(event_id)
    assert isinstance(message, EventCreated)
    assert message.event_id == event_id
    assert message.event.team_1 == "Ajax"
    assert message.event.event_date == event_date
    assert message.event.deadline == deadline


def test_deadline_defaults_to_the_event_date(client: TestClient, operator: Caller) -> None:
    event_date = soon()

    response = client.post(
        "/events", json=new_event(event_date=event_date.isoformat()), headers=operator.headers
    )

    assert response.status_code == 202
    assert response.json()["deadline"] == response.json()["event_date"]


def test_timestamps_are_answered_in_utc(client: TestClient, operator: Caller) -> None:
    response = client.post(
        "/events", json=new_event(event_date="2040-06-01T20:00:00+02:00"), headers=operator.headers
    )

    assert response.status_code == 202
    assert response.json()["event_date"] == "2040-06-01T18:00:00Z"


def test_creating_an_event_needs_a_token(client: TestClient) -> None:
    response = client.post("/events", json=new_event())

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_players_may_not_create_events(client: TestClient, player: Caller) -> None:
    response = client.post("/events", json=new_event(), headers=player.headers)

    assert response.status_code == 403


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"venue": "Amsterdam"}, id="unknown-field"),
        pytest.param({"odds": {"team_1": "1.855", "team_2": "2", "draw": "3"}}, id="3-decimals"),
        pytest.param({"odds": {"team_1": "0", "team_2": "2", "draw": "3"}}, id="zero-odds"),
        pytest.param({"odds": {"team_1": -1.5, "team_2": "2", "draw": "3"}}, id="negative"),
        pytest.param({"odds": {"team_1": "1.5", "team_2": "2"}}, id="missing-odds"),
        pytest.param({"event_date": "2040-06-01T20:00:00"}, id="naive-timestamp"),
        pytest.param(
            {"event_date": "2040-06-01T20:00:00Z", "deadline": "2040-06-01T20:00:01Z"},
            id="deadline-after-event",
        ),
        pytest.param({"team_2": "Ajax"}, id="same-teams"),
        pytest.param({"team_1": "  "}, id="blank-team"),
        pytest.param({"state": "active"}, id="state-at-creation"),
        pytest.param({"team_1": "Aj\x00ax"}, id="nul-in-name"),
    ],
)
def test_an_invalid_event_is_refused(
    client: TestClient, operator: Caller, overrides: dict[str, Any]
) -> None:
    response = client.post("/events", json=new_event(**overrides), headers=operator.headers)

    assert response.status_code == 422, response.text


# --- PATCH /events/{id} -------------------------------------------------------------------


def test_an_update_publishes_only_the_changed_fields(
    client: TestClient, operator: Caller, make_event: MakeEvent, read_events_topic: ReadTopic
) -> None:
    event = make_event()

    response = client.patch(
        f"/events/{event.id}", json={"state": "active"}, headers=operator.headers
    )

    assert response.status_code == 202, response.text
    [(key, message, raw)] = read_events_topic(event.id)
    assert key == str(event.id)
    assert isinstance(message, EventUpdated)
    assert message.changes.model_fields_set == {"state"}
    assert json.loads(raw)["changes"] == {"state": "active"}


def test_an_update_answers_the_event_as_it_will_be(
    client: TestClient, operator: Caller, make_event: MakeEvent
) -> None:
    event = make_event(state="active", score="1-0", version=7)

    response = client.patch(
        f"/events/{event.id}",
        json={"score": "2-0", "odds": {"team_1": "1.10", "team_2": "9", "draw": "5.5"}},
        headers=operator.headers,
    )

    assert response.status_code == 202
    answer = response.json()
    assert answer["id"] == str(event.id)
    assert answer["score"] == "2-0"
    assert answer["state"] == "active"
    assert answer["odds"] == {"team_1": "1.10", "team_2": "9.00", "draw": "5.50"}
    assert answer["team_1"] == "Ajax"
    assert answer["version"] == 7


def test_updating_an_unknown_event_is_404(client: TestClient, operator: Caller) -> None:
    response = client.patch(
        f"/events/{uuid.uuid4()}", json={"state": "active"}, headers=operator.headers
    )

    assert response.status_code == 404


def test_updating_a_deleted_event_is_404(
    client: TestClient, operator: Caller, make_event: MakeEvent
) -> None:
    event = make_event(deleted_at=datetime.now(UTC))

    response = client.patch(
        f"/events/{event.id}", json={"state": "active"}, headers=operator.headers
    )

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("state", "change"),
    [
        pytest.param("active", {"state": "created"}, id="active-to-created"),
        pytest.param("finished", {"state": "active"}, id="finished-to-active"),
        pytest.param("finished", {"team_1": "Feyenoord"}, id="finished-is-final"),
        pytest.param("created", {"score": "1-0"}, id="score-before-start"),
        pytest.param("created", {"state": "active", "score": "1-0"}, id="score-with-start"),
        pytest.param("created", {"state": "finished", "score": "1-0"}, id="score-with-finish"),
        pytest.param("finished", {"state": "cancelled"}, id="finished-to-cancelled"),
        pytest.param("cancelled", {"state": "active"}, id="cancelled-to-active"),
        pytest.param("cancelled", {"state": "finished"}, id="cancelled-to-finished"),
        pytest.param("cancelled", {"state": "cancelled"}, id="cancelled-again"),
        pytest.param("cancelled", {"type": "futsal"}, id="cancelled-is-final"),
        pytest.param(
            "cancelled",
            {"odds": {"team_1": "2", "team_2": "2", "draw": "2"}},
            id="cancelled-odds",
        ),
        pytest.param("active", {"state": "cancelled", "score": "2-0"}, id="score-with-cancel"),
        pytest.param("created", {"state": "cancelled", "score": "1-0"}, id="score-with-cancel-0"),
    ],
)
def test_a_change_the_state_forbids_is_409(
    client: TestClient,
    operator: Caller,
    make_event: MakeEvent,
    state: str,
    change: dict[str, Any],
) -> None:
    event = make_event(state=state, score="0-0" if state == "created" else "1-0")

    response = client.patch(f"/events/{event.id}", json=change, headers=operator.headers)

    assert response.status_code == 409, response.text


@pytest.mark.parametrize(("state", "score"), [("created", "0-0"), ("active", "1-2")])
def test_a_created_or_active_event_is_cancelled_through_the_log(
    client: TestClient,
    operator: Caller,
    make_event: MakeEvent,
    store_bet: StoreBet,
    edit_event: Callable[..., None],
    read_events_topic: ReadTopic,
    state: str,
    score: str,
) -> None:
    event = make_event()
    store_bet(event)
    edit_event(event.id, state=state, score=Score.parse(score))  # called off where it stands

    response = client.patch(
        f"/events/{event.id}", json={"state": "cancelled"}, headers=operator.headers
    )

    assert response.status_code == 202, response.text
    assert (response.json()["state"], response.json()["score"]) == ("cancelled", score)
    [(_, message, raw)] = read_events_topic(event.id)
    assert isinstance(message, EventUpdated)
    assert json.loads(raw)["changes"] == {"state": "cancelled"}
    # The line provider only publishes: the event writer applies it.
    assert client.get(f"/events/{event.id}").json()["state"] == state


def test_the_teams_of_an_event_with_bets_cannot_change(
    client: TestClient, operator: Caller, make_event: MakeEvent, store_bet: StoreBet
) -> None:
    event = make_event()
    store_bet(event)

    for change in ({"team_1": "Twente"}, {"team_2": "Twente"}, {"team_1": "PSV", "team_2": "Ajax"}):
        response = client.patch(f"/events/{event.id}", json=change, headers=operator.headers)
        assert response.status_code == 409, response.text
        assert response.json() == {"detail": "the event has bets: its teams can no longer change"}


def test_the_odds_of_an_event_with_bets_may_change(
    client: TestClient, operator: Caller, make_event: MakeEvent, store_bet: StoreBet
) -> None:
    event = make_event()
    store_bet(event)
    odds = {"team_1": "1.50", "team_2": "2.50", "draw": "3.50"}
    # Resending the teams it already has changes nothing, so it is no team change.
    change = {"odds": odds, "team_1": "Ajax", "type": "futsal"}

    response = client.patch(f"/events/{event.id}", json=change, headers=operator.headers)

    assert response.status_code == 202, response.text
    assert response.json()["odds"] == odds


def test_the_teams_of_an_event_without_bets_may_change(
    client: TestClient, operator: Caller, make_event: MakeEvent
) -> None:
    event = make_event()

    response = client.patch(
        f"/events/{event.id}", json={"team_1": "Twente"}, headers=operator.headers
    )

    assert response.status_code == 202, response.text
    assert response.json()["team_1"] == "Twente"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({}, id="empty"),
        pytest.param({"score": "2:1"}, id="bad-score"),
        pytest.param({"score": "01-0"}, id="leading-zero"),
        pytest.param({"state": "paused"}, id="unknown-state"),
        pytest.param({"team_1": None}, id="null"),
        pytest.param({"version": 3}, id="unknown-field"),
        pytest.param({"deadline": "2041-01-01T00:00:00"}, id="naive-timestamp"),
        pytest.param({"team_2": "Ajax"}, id="same-teams"),
    ],
)
def test_an_invalid_update_is_422(
    client: TestClient, operator: Caller, make_event: MakeEvent, change: dict[str, Any]
) -> None:
    event = make_event()

    response = client.patch(f"/events/{event.id}", json=change, headers=operator.headers)

    assert response.status_code == 422, response.text


def test_moving_the_deadline_past_the_event_date_is_422(
    client: TestClient, operator: Caller, make_event: MakeEvent
) -> None:
    event = make_event()
    too_late = (event.event_date + timedelta(minutes=1)).isoformat()

    response = client.patch(
        f"/events/{event.id}", json={"deadline": too_late}, headers=operator.headers
    )

    assert response.status_code == 422
    assert "deadline" in response.json()["detail"][0]["msg"]


def test_players_may_not_update_events(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event()

    response = client.patch(f"/events/{event.id}", json={"state": "active"}, headers=player.headers)

    assert response.status_code == 403


# --- GET /events --------------------------------------------------------------------------


def test_the_list_is_paginated_by_event_date_with_a_total(
    client: TestClient, make_event: MakeEvent
) -> None:
    kind = f"paging-{uuid.uuid4().hex[:8]}"
    events = [make_event(type=kind, event_date=soon(days=5 - n)) for n in range(5)]
    by_date = [str(e.id) for e in sorted(events, key=lambda e: e.event_date)]

    first = client.get("/events", params={"type": kind, "limit": 2}).json()
    last = client.get("/events", params={"type": kind, "limit": 2, "offset": 4}).json()

    assert first["total"] == last["total"] == 5
    assert [e["id"] for e in first["items"]] == by_date[:2]
    assert [e["id"] for e in last["items"]] == by_date[4:]


def test_the_list_filters_by_state(client: TestClient, make_event: MakeEvent) -> None:
    kind = f"state-{uuid.uuid4().hex[:8]}"
    active = make_event(type=kind, state="active", score="1-1")
    make_event(type=kind)
    make_event(type=kind, state="finished")

    page = client.get("/events", params={"type": kind, "state": "active"}).json()

    assert page["total"] == 1
    assert page["items"][0]["id"] == str(active.id)
    assert page["items"][0]["score"] == "1-1"


def test_cancelled_events_are_listed_by_their_state_and_never_open(
    client: TestClient, make_event: MakeEvent
) -> None:
    kind = f"cancelled-{uuid.uuid4().hex[:8]}"
    cancelled = make_event(type=kind, state="cancelled")
    make_event(type=kind)

    page = client.get("/events", params={"type": kind, "state": "cancelled"}).json()
    bettable = client.get("/events", params={"type": kind, "open": "true"}).json()

    assert [item["id"] for item in page["items"]] == [str(cancelled.id)]
    assert str(cancelled.id) not in {item["id"] for item in bettable["items"]}
    assert bettable["total"] == 1


def test_open_keeps_only_events_a_bet_can_be_placed_on(
    client: TestClient, make_event: MakeEvent
) -> None:
    kind = f"open-{uuid.uuid4().hex[:8]}"
    bettable = make_event(type=kind)
    make_event(type=kind, event_date=soon(hours=1), deadline=soon(minutes=-1))
    make_event(type=kind, state="active")

    open_page = client.get("/events", params={"type": kind, "open": "true"}).json()
    closed_page = client.get("/events", params={"type": kind, "open": "false"}).json()

    assert [e["id"] for e in open_page["items"]] == [str(bettable.id)]
    assert open_page["total"] == 1
    assert closed_page["total"] == 2


def test_the_list_leaves_out_deleted_events(client: TestClient, make_event: MakeEvent) -> None:
    kind = f"deleted-{uuid.uuid4().hex[:8]}"
    kept = make_event(type=kind)
    make_event(type=kind, deleted_at=datetime.now(UTC))

    page = client.get("/events", params={"type": kind}).json()

    assert [e["id"] for e in page["items"]] == [str(kept.id)]
    assert page["total"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"offset": 2**63},
        {"state": "paused"},
        {"open": "maybe"},
        {"type": "foot\x00ball"},
    ],
)
def test_bad_list_parameters_are_422(client: TestClient, params: dict[str, Any]) -> None:
    assert client.get("/events", params=params).status_code == 422


def test_the_list_defaults_to_fifty(client: TestClient, make_event: MakeEvent) -> None:
    kind = f"default-limit-{uuid.uuid4().hex[:8]}"
    for _ in range(51):
        make_event(type=kind)

    page = client.get("/events", params={"type": kind}).json()

    assert (len(page["items"]), page["total"]) == (50, 51)


# --- GET /events/{id} ---------------------------------------------------------------------


def test_anyone_reads_an_event(client: TestClient, make_event: MakeEvent) -> None:
    event = make_event(version=3)

    response = client.get(f"/events/{event.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(event.id)
    assert body["version"] == 3
    assert body["odds"] == {"team_1": "1.85", "team_2": "2.10", "draw": "3.40"}
    assert body["event_date"] == event.event_date.isoformat().replace("+00:00", "Z")


def test_an_unknown_event_is_404(client: TestClient) -> None:
    assert client.get(f"/events/{uuid.uuid4()}").status_code == 404


def test_a_malformed_event_id_is_422(client: TestClient) -> None:
    assert client.get("/events/not-a-uuid").status_code == 422


# --- DELETE /events/{id} ------------------------------------------------------------------


def test_an_event_without_bets_is_soft_deleted(
    client: TestClient, operator: Caller, make_event: MakeEvent
) -> None:
    event = make_event()

    response = client.delete(f"/events/{event.id}", headers=operator.headers)

    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"/events/{event.id}").status_code == 404
    with Session(get_engine()) as session:
        stored = session.get(Event, event.id)
        assert stored is not None
        assert stored.deleted_at is not None
    assert client.delete(f"/events/{event.id}", headers=operator.headers).status_code == 404


def test_an_event_with_bets_cannot_be_deleted(
    client: TestClient,
    operator: Caller,
    make_event: MakeEvent,
    store_bet: StoreBet,
) -> None:
    event = make_event()
    store_bet(event)

    response = client.delete(f"/events/{event.id}", headers=operator.headers)

    assert response.status_code == 409
    assert "cancel it instead" in response.json()["detail"]
    assert client.get(f"/events/{event.id}").status_code == 200


def test_deleting_an_unknown_event_is_404(client: TestClient, operator: Caller) -> None:
    assert client.delete(f"/events/{uuid.uuid4()}", headers=operator.headers).status_code == 404


def test_players_may_not_delete_events(
    client: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event = make_event()

    assert client.delete(f"/events/{event.id}", headers=player.headers).status_code == 403
    assert client.delete(f"/events/{event.id}").status_code == 401


def test_the_openapi_document_shows_the_cancelled_state(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]

    assert "cancelled" in schemas["EventState"]["enum"]
