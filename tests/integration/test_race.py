"""Bets racing the kick-off: every accepted bet is scored, none is accepted after it."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from betting.auth import Role
from betting.domain import BetState
from tests.integration.conftest import Functions, bearer, publish_event, wait_for

pytestmark = pytest.mark.e2e

PLACERS = 8


def test_bets_placed_while_the_event_starts_are_all_scored_or_refused(
    line_provider_url: str, bet_maker_url: str, functions: Functions
) -> None:
    operator = bearer(Role.OPERATOR, "operator-1")
    event_id = publish_event(line_provider_url, operator)

    started_active_at: list[float] = []
    stop = threading.Event()
    results: list[tuple[float, int, str | None]] = []  # (sent at, status, bet id)
    lock = threading.Lock()

    def place(player: int) -> None:
        headers = bearer(Role.PLAYER, f"racer-{player}")
        markets = ("team_1", "team_2", "draw")
        with httpx.Client(base_url=bet_maker_url, timeout=30) as client:
            n = 0
            while not stop.is_set():
                sent = time.monotonic()
                response = client.post(
                    "/bets",
                    headers=headers,
                    json={"event_id": event_id, "market": markets[n % 3], "amount": "1.00"},
                )
                body = response.json() if response.status_code == 201 else {}
                with lock:
                    results.append((sent, response.status_code, body.get("id")))
                n += 1

    with ThreadPoolExecutor(PLACERS) as pool:
        for player in range(PLACERS):
            pool.submit(place, player)
        time.sleep(1.0)
        response = httpx.patch(
            f"{line_provider_url}/events/{event_id}", headers=operator, json={"state": "active"}
        )
        assert response.status_code == 202
        wait_for(
            lambda: httpx.get(f"{line_provider_url}/events/{event_id}").json()["state"] == "active",
            what="the event to start",
        )
        started_active_at.append(time.monotonic())
        time.sleep(1.0)
        stop.set()

    statuses = {status for _, status, _ in results}
    assert statuses <= {201, 409}, statuses
    accepted = {bet_id for _, status, bet_id in results if status == 201}
    assert accepted, "no bet got in before the kick-off"
    late = [status for sent, status, _ in results if sent > started_active_at[0]]
    assert late and set(late) == {409}, "a bet was accepted after the event started"

    admin = bearer(Role.OPERATOR, "auditor")

    def all_scored() -> bool:
        stored: dict[str, str] = {}
        offset = 0
        while True:
            page = httpx.get(
                f"{bet_maker_url}/bets",
                headers=admin,
                params={"event_id": event_id, "limit": 100, "offset": offset},
            ).json()
            stored.update({bet["id"]: bet["state"] for bet in page["items"]})
            offset += 100
            if offset >= page["total"]:
                break
        assert set(stored) == accepted  # nothing lost, nothing extra
        return all(state != BetState.NONE.value for state in stored.values())

    wait_for(all_scored, 60, "every accepted bet to be scored")
