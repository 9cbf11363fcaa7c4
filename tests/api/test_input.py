"""Hostile input over HTTP: the conventions of docs/API.md, one rule at a time."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from betting.models import Event
from tests.api.conftest import Caller
from tests.api.test_events import new_event

MakeEvent = Callable[..., Event]

OUT_OF_CALENDAR = ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00"]
NOT_TIMESTAMPS = [1700000000, 1700000000.5, "1700000000", "2030-05-01T18:45:00", "2030-05-01"]


def _loc(response: Any) -> list[list[Any]]:
    return [error["loc"] for error in response.json()["detail"]]


# --- Timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["event_date", "deadline"])
@pytest.mark.parametrize("stamp", OUT_OF_CALENDAR + NOT_TIMESTAMPS)
def test_creating_an_event_with_a_timestamp_out_of_range_or_not_iso_is_422(
    client: TestClient, operator: Caller, field: str, stamp: Any
) -> None:
    body = new_event(**{field: stamp})
    if field == "deadline":
        body["event_date"] = "9999-12-31T00:00:00Z"  # so only the deadline can be wrong

    response = client.post("/events", json=body, headers=operator.headers)

    assert response.status_code == 422, response.text
    assert ["body", field] in _loc(response)


@pytest.mark.parametrize("stamp", OUT_OF_CALENDAR + NOT_TIMESTAMPS)
def test_changing_an_event_to_a_timestamp_out_of_range_or_not_iso_is_422(
    client: TestClient, operator: Caller, make_event: MakeEvent, stamp: Any
) -> None:
    event = make_event()

    response = client.patch(
        f"/events/{event.id}", json={"event_date": stamp}, headers=operator.headers
    )

    assert response.status_code == 422, response.text
    assert ["body", "event_date"] in _loc(response)
