"""Hostile input over HTTP: the conventions of docs/API.md, one rule at a time."""

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Caller, MakeEvent
from tests.api.test_events import new_event

OUT_OF_CALENDAR = ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00"]
NOT_TIMESTAMPS = [1700000000, 1700000000.5, "1700000000", "2030-05-01T18:45:00", "2030-05-01"]


def _loc(response: Any) -> list[list[Any]]:
    return [error["loc"] for error in response.json()["detail"]]


# --- Timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["event_date", "deadline"])
@pytest.mark.parametrize("stamp", OUT_OF_CALENDAR + NOT_TIMESTAMPS)
def test_creating_an_event_with_a_timestamp_out_of_range_or_not_iso_is_422(
    line_provider: TestClient, operator: Caller, field: str, stamp: Any
) -> None:
    body = new_event(**{field: stamp})
    if field == "deadline":
        body["event_date"] = "9999-12-31T00:00:00Z"  # so only the deadline can be wrong

    response = line_provider.post("/events", json=body, headers=operator.headers)

    assert response.status_code == 422, response.text
    assert ["body", field] in _loc(response)


@pytest.mark.parametrize("stamp", OUT_OF_CALENDAR + NOT_TIMESTAMPS)
def test_changing_an_event_to_a_timestamp_out_of_range_or_not_iso_is_422(
    line_provider: TestClient, operator: Caller, make_event: MakeEvent, stamp: Any
) -> None:
    event = make_event()

    response = line_provider.patch(
        f"/events/{event.id}", json={"event_date": stamp}, headers=operator.headers
    )

    assert response.status_code == 422, response.text
    assert ["body", "event_date"] in _loc(response)


# --- Money, read exactly as written -------------------------------------------------------


def _post_json(client: TestClient, url: str, text: str, caller: Caller) -> Any:
    """Send `text` as the body, byte for byte (`json=` would go through Python floats)."""
    headers = {**caller.headers, "Content-Type": "application/json"}
    return client.post(url, content=text.encode(), headers=headers)


def _event_text(odds_team_1: str) -> str:
    body = new_event(odds={"team_1": "__ODDS__", "team_2": "2.10", "draw": "3.40"})
    return json.dumps(body).replace('"__ODDS__"', odds_team_1)


NOT_EXACT_MONEY = [
    "1.850000000000000001",  # a float would read 1.85
    "1.851",
    "1e1",
    "1.0e1",
    '"1e1"',
    '" 1.50 "',
    '"1_000"',
    '"+1.50"',
    "0.0",
    "-1.50",
]


@pytest.mark.parametrize("odds", NOT_EXACT_MONEY)
def test_odds_not_written_as_a_plain_positive_two_place_decimal_are_422(
    line_provider: TestClient, operator: Caller, odds: str
) -> None:
    response = _post_json(line_provider, "/events", _event_text(odds), operator)

    assert response.status_code == 422, response.text
    assert _loc(response) == [["body", "odds", "team_1"]]


@pytest.mark.parametrize(("odds", "answered"), [("1.85", "1.85"), ("1.5", "1.50"), ('"2"', "2.00")])
def test_odds_are_read_exactly_from_a_json_number_or_string(
    line_provider: TestClient, operator: Caller, odds: str, answered: str
) -> None:
    response = _post_json(line_provider, "/events", _event_text(odds), operator)

    assert response.status_code == 202, response.text
    assert response.json()["odds"]["team_1"] == answered


@pytest.mark.parametrize("amount", NOT_EXACT_MONEY)
def test_a_stake_not_written_as_a_plain_positive_two_place_decimal_is_422(
    bet_maker: TestClient, player: Caller, make_event: MakeEvent, amount: str
) -> None:
    event_id = make_event().id

    placed = _post_json(
        bet_maker,
        "/bets",
        f'{{"event_id": "{event_id}", "market": "draw", "amount": {amount}}}',
        player,
    )
    changed = bet_maker.patch(
        f"/bets/{uuid.uuid4()}",
        content=f'{{"amount": {amount}}}'.encode(),
        headers={**player.headers, "Content-Type": "application/json"},
    )

    assert (placed.status_code, changed.status_code) == (422, 422), (placed.text, changed.text)
    assert _loc(placed) == [["body", "amount"]]
    assert _loc(changed) == [["body", "amount"]]


def test_one_stake_however_written_is_one_request_for_its_idempotency_key(
    bet_maker: TestClient, player: Caller, make_event: MakeEvent
) -> None:
    event_id = make_event().id
    headers = {**player.headers, "Idempotency-Key": f"spelling-{uuid.uuid4()}"}
    spellings = ['"10.00"', '"10"', "10", "10.0", "10.00", '"10.000"']

    answers = [
        bet_maker.post(
            "/bets",
            content=f'{{"event_id": "{event_id}", "market": "draw", "amount": {amount}}}'.encode(),
            headers={**headers, "Content-Type": "application/json"},
        )
        for amount in spellings
    ]

    assert [answer.status_code for answer in answers] == [201] * len(spellings)
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert answers[0].json()["amount"] == "10.00"


# --- Bodies: size and syntax --------------------------------------------------------------


def _padded_event(size: int) -> bytes:
    """A `POST /events` body of exactly `size` bytes (its `type` padded, so too long)."""
    text = json.dumps(new_event(type=""))
    return text.replace('"type": ""', '"type": "' + "x" * (size - len(text)) + '"').encode()


@pytest.mark.parametrize(
    ("url", "method"), [("/events", "POST"), ("/events/{id}", "PATCH"), ("/bets", "POST")]
)
def test_a_body_over_64_kib_is_413(
    request: pytest.FixtureRequest, operator: Caller, player: Caller, url: str, method: str
) -> None:
    client: TestClient = request.getfixturevalue("bet_maker" if url == "/bets" else "line_provider")
    caller = player if url == "/bets" else operator
    headers = {**caller.headers, "Content-Type": "application/json"}

    response = client.request(
        method, url.format(id=uuid.uuid4()), content=_padded_event(64 * 1024 + 1), headers=headers
    )

    assert response.status_code == 413, response.text
    assert response.json() == {"detail": "the request body is larger than 65536 bytes"}


def test_a_body_of_exactly_64_kib_is_read(line_provider: TestClient, operator: Caller) -> None:
    body = _padded_event(64 * 1024)
    assert len(body) == 64 * 1024
    headers = {**operator.headers, "Content-Type": "application/json"}

    response = line_provider.post("/events", content=body, headers=headers)

    assert response.status_code == 422  # read and validated: the padded type is too long
    assert _loc(response) == [["body", "type"]]


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": ',
        b"{'type': 'football'}",
        b'{"odds": NaN}',
        b'{"team_1": "\xff\xfe"}',
        b"[" * 20_000,
        b"[" + b"1" * 5000 + b"]",
    ],
    ids=["truncated", "single-quotes", "nan", "not-utf-8", "nested-too-deep", "huge-integer"],
)
def test_a_body_that_is_not_json_is_422_json_invalid(
    line_provider: TestClient, operator: Caller, body: bytes
) -> None:
    headers = {**operator.headers, "Content-Type": "application/json"}

    response = line_provider.post("/events", content=body, headers=headers)

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["type"] == "json_invalid"
    assert error["loc"][0] == "body"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_is_422(
    line_provider: TestClient, operator: Caller, content_type: str | None
) -> None:
    headers = dict(operator.headers)
    if content_type:
        headers["Content-Type"] = content_type

    response = line_provider.post(
        "/events", content=json.dumps(new_event()).encode(), headers=headers
    )

    assert response.status_code == 422, response.text


# --- Methods ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "method", "url", "allowed"),
    [
        ("line_provider", "OPTIONS", "/events", "GET, POST"),
        ("line_provider", "PUT", "/events", "GET, POST"),
        ("line_provider", "OPTIONS", "/events/{id}", "DELETE, GET, PATCH"),
        ("bet_maker", "TRACE", "/bets/{id}", "DELETE, GET, PATCH"),
        ("bet_maker", "DELETE", "/bets", "GET, POST"),
        ("bet_maker", "POST", "/healthz", "GET"),
        ("line_provider", "OPTIONS", "/metrics", "GET"),
    ],
)
def test_an_unsupported_method_is_405_with_every_method_of_the_path_in_allow(
    request: pytest.FixtureRequest, server: str, method: str, url: str, allowed: str
) -> None:
    client: TestClient = request.getfixturevalue(server)

    response = client.request(method, url.format(id=uuid.uuid4()))

    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize("server", ["line_provider", "bet_maker"])
def test_an_unknown_path_is_404_whatever_the_method(
    request: pytest.FixtureRequest, server: str
) -> None:
    client: TestClient = request.getfixturevalue(server)
    assert client.options("/nowhere").status_code == 404
    assert client.options("/bets" if server == "line_provider" else "/events").status_code == 404
