"""The bet stream against the running system: a client that drops out mid-match and comes
back with Last-Event-ID misses nothing and gets nothing twice; a shutdown ends it cleanly."""

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from betting.auth import Role
from betting.domain import BetState, EventState, Market, Score, score_bet
from tests.conftest import Stack
from tests.integration.conftest import (
    Functions,
    bearer,
    event_over_http,
    publish_event,
    server_process,
    wait_for,
)
from tests.sse import END, Sse, Stream

pytestmark = pytest.mark.e2e

PLAYERS = ("ana", "ben", "chloe")
# Each step waits until every bet shows it, so every intermediate state is stored.
STEPS: list[tuple[dict[str, str], EventState, str]] = [
    ({"state": "active"}, EventState.ACTIVE, "0-0"),
    ({"score": "1-0"}, EventState.ACTIVE, "1-0"),
    ({"score": "1-1"}, EventState.ACTIVE, "1-1"),
    ({"state": "finished", "score": "2-1"}, EventState.FINISHED, "2-1"),
]


def operator() -> dict[str, str]:
    return bearer(Role.OPERATOR, "operator-1")


@contextmanager
def subscribe(
    url: str, headers: dict[str, str], last_event_id: str | None = None, **params: str
) -> Iterator[tuple[Stream, list[Sse]]]:
    """A stream over HTTP, once it is live: the client and what it had missed."""
    if last_event_id is not None:
        headers = {**headers, "Last-Event-ID": last_event_id}
    timeout = httpx.Timeout(10, read=40)  # a keep-alive comment comes every 15 s
    with httpx.stream(
        "GET", f"{url}/bets/stream", headers=headers, params=params, timeout=timeout
    ) as response:
        assert response.status_code == 200, response.read()
        stream = Stream(response.iter_lines())
        yield stream, stream.until_live()


def play(url: str, event_id: str, bets: list[dict[str, Any]], steps: list[Any]) -> None:
    """Send each change once the previous one is on every bet."""
    for change, state, score in steps:
        response = httpx.patch(f"{url}/events/{event_id}", headers=operator(), json=change)
        assert response.status_code == 202, response.text
        event_over_http(url, event_id, state=state.value, score=score)
        expected = {
            b["id"]: score_bet(Market(b["market"]), state, Score.parse(score)) for b in bets
        }

        def stored(expected: dict[str, BetState] = expected) -> bool:
            page = httpx.get(
                f"{url}/bets", headers=operator(), params={"event_id": event_id}
            ).json()
            return {b["id"]: BetState(b["state"]) for b in page["items"]} == expected

        wait_for(stored, 30, f"bets at {state} {score}")


def changes_expected(bets: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each bet's states, one per change: what the stream must send, in order."""
    expected: dict[str, list[str]] = {}
    for bet in bets:
        states = ["none"]
        for _, state, score in STEPS:
            now = score_bet(Market(bet["market"]), state, Score.parse(score)).value
            if now != states[-1]:
                states.append(now)
        expected[bet["id"]] = states[1:]
    return expected


def by_bet(events: list[Sse]) -> dict[str, list[str]]:
    received: dict[str, list[str]] = {}
    for event in events:
        received.setdefault(event.data["id"], []).append(event.data["state"])
    return received


def cursor(event: Sse) -> tuple[int, ...]:
    return tuple(int(part) for part in event.id.split("-"))


def test_a_client_that_drops_out_mid_match_resumes_with_last_event_id_losing_nothing(
    front_url: str, functions: Functions
) -> None:
    url = front_url  # the whole API at one address, as the Ingress gives it; it streams
    event_id = publish_event(url, operator())
    bets = []
    for name in PLAYERS:
        for market in Market:
            body = {"event_id": event_id, "market": market.value, "amount": "10.00"}
            response = httpx.post(f"{url}/bets", headers=bearer(Role.PLAYER, name), json=body)
            assert response.status_code == 201, response.text
            bets.append(response.json())
    ana = bearer(Role.PLAYER, "ana")

    with (
        subscribe(url, operator(), event_id=event_id) as (watcher, _),
        subscribe(url, ana) as (player, _),
    ):
        play(url, event_id, bets, STEPS[:1])  # kick-off: all nine bets change
        first_part = watcher.events(4)  # and the operator drops out four changes in
        player_first = player.events(3)
    play(url, event_id, bets, STEPS[1:3])
    with (
        subscribe(url, operator(), first_part[-1].id, event_id=event_id) as (watcher, missed),
        subscribe(url, ana, player_first[-1].id) as (player, player_missed),
    ):
        play(url, event_id, bets, STEPS[3:])
        expected = changes_expected(bets)
        everything = [*first_part, *missed]
        everything += watcher.events(sum(map(len, expected.values())) - len(everything))
        theirs = [*player_first, *player_missed]
        mine = {b["id"] for b in bets if b["user_id"] == "ana"}
        theirs += player.events(sum(len(expected[bet]) for bet in mine) - len(theirs))
        assert watcher.nothing_more() and player.nothing_more()

    assert missed, "the operator missed the rest of the kick-off and two goals"
    assert by_bet(everything) == expected
    assert by_bet(theirs) == {bet: expected[bet] for bet in mine}
    for events in (everything, theirs):
        cursors = [cursor(event) for event in events]
        assert cursors == sorted(set(cursors)), "in log order, none twice"
    final = {event.data["id"]: event.data for event in everything}
    for bet in bets:
        shown = httpx.get(f"{url}/bets/{bet['id']}", headers=operator()).json()
        assert final[bet["id"]] == shown


def test_a_shutdown_ends_every_stream_cleanly_with_a_final_comment(stack: Stack) -> None:
    with (
        server_process(stack, "bet-maker") as (bet_maker, url),
        subscribe(url, operator()) as (stream, _),
    ):
        started = time.monotonic()
        bet_maker.signal(signal.SIGTERM)
        rest = stream.rest()  # fails if the stream is cut instead of ended
        # uvicorn re-raises the SIGTERM once it has shut down, as its exit status.
        assert bet_maker.stop(timeout_s=15) == -signal.SIGTERM
        took = time.monotonic() - started
    assert bet_maker.log_path is not None
    assert "Application shutdown complete" in bet_maker.log_path.read_text()
    assert [item for item in rest if isinstance(item, str)][-1].startswith(
        ": the server is shutting down"
    )
    assert END not in rest
    assert took < 10
