"""The few HTTP calls the scenarios make, as a player or an operator would make them."""

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.stack import token
from betting.auth import Role
from betting.domain import EventState, Market, Score, score_bet

MARKETS = ("team_1", "team_2", "draw")
ODDS = {"team_1": "2.10", "team_2": "3.40", "draw": "3.00"}


def bearer(user: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, role)}"}


def event_body() -> dict[str, Any]:
    """A match kicking off in two hours, with a name of its own."""
    kickoff = datetime.now(UTC) + timedelta(hours=2)
    return {
        "type": f"bench-{uuid.uuid4().hex[:8]}",
        "team_1": "Ajax",
        "team_2": "PSV",
        "event_date": kickoff.isoformat(),
        "odds": ODDS,
    }


def expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}, expected {status}: {response.text[:500]}"
        )
    return response


def create_event(client: httpx.Client, operator: dict[str, str]) -> str:
    """`POST /events`; the new event's id (not yet readable)."""
    response = expect(client.post("/events", headers=operator, json=event_body()), 202)
    event_id: str = response.json()["id"]
    return event_id


def wait_until(check: Any, timeout_s: float, what: str, interval_s: float = 0.005) -> float:
    """Poll `check()` until true; the monotonic time it first was."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)
    return time.monotonic()


def event_readable(client: httpx.Client, event_id: str, **expected: Any) -> bool:
    response = client.get(f"/events/{event_id}")
    if response.status_code != 200:
        return False
    body = response.json()
    return all(body[key] == value for key, value in expected.items())


def wait_event(
    client: httpx.Client, event_id: str, timeout_s: float = 60, **expected: Any
) -> float:
    return wait_until(
        lambda: event_readable(client, event_id, **expected),
        timeout_s,
        f"event {event_id} with {expected}",
    )


def change_event(
    client: httpx.Client, operator: dict[str, str], event_id: str, **changes: Any
) -> float:
    """`PATCH /events/{id}`; the monotonic time of its `202`."""
    expect(client.patch(f"/events/{event_id}", headers=operator, json=changes), 202)
    return time.monotonic()


def place_bet(client: httpx.Client, player: dict[str, str], event_id: str, market: str) -> None:
    body = {"event_id": event_id, "market": market, "amount": "10.00"}
    expect(client.post("/bets", headers=player, json=body), 201)


def target_states(state: str, score: str) -> dict[str, str]:
    """The state every bet on each market must reach (the domain's rule, per market)."""
    return {
        market: score_bet(Market(market), EventState(state), Score.parse(score)).value
        for market in MARKETS
    }
