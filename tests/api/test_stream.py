"""The bet stream: GET /bets/stream on the bet maker, fed by the bet writer's own statement
(no pipeline)."""

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from unittest.mock import ANY

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from betting.db import session_scope
from betting.domain import BetState, settled_payout
from betting.messages import BetScored, encode
from betting.models import Bet, BetPublic, Event
from betting.streams import LogRecord
from functions.bet_writer.apply import apply_bet_updates
from gateway.changes import BET_JSON_SQL, Interest
from gateway.feed import KEEP_ALIVE, LIVE, ChangeFeed
from tests.api.conftest import Caller, EditEvent, MakeBet, MakeCaller, MakeEvent
from tests.conftest import Stack
from tests.sse import Sse, Stream


@pytest.fixture
def client(bet_maker: TestClient) -> TestClient:
    return bet_maker


@pytest.fixture
def open_stream(client: TestClient) -> Callable[..., Any]:
    """`with open_stream(caller, params, last_event_id) as stream:` once it is live."""

    @contextmanager
    def open_it(
        caller: Caller, params: dict[str, str] | None = None, last_event_id: str | None = None
    ) -> Iterator[tuple[Stream, list[Sse]]]:
        headers = dict(caller.headers)
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        with client.stream("GET", "/bets/stream", headers=headers, params=params) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert "content-length" not in response.headers  # it streams, chunked
            stream = Stream(response.iter_lines())
            missed = stream.until_live()
            yield stream, missed

    return open_it


OneBet = tuple[Caller, Event, dict[str, Any]]


@pytest.fixture
def one_bet(make_caller: MakeCaller, make_event: MakeEvent, make_bet: MakeBet) -> OneBet:
    """A player with one bet on an event of their own."""
    ana, event = make_caller(), make_event()
    return ana, event, make_bet(ana, event_id=str(event.id))


@pytest.fixture
def score(edit_event: EditEvent) -> Callable[..., None]:
    """`score(event, version, {bet_id: state})`: the event moves to `version` and the bet
    writer applies those updates, as the pipeline would."""

    def apply(event: Event, version: int, states: dict[str, BetState]) -> None:
        edit_event(event.id, state="active", score_version=version, version=version)
        records = [
            LogRecord(
                0,
                n,
                1_700_000_000_000 + version,
                bet_id,
                encode(
                    BetScored(
                        bet_id=uuid.UUID(bet_id), event_id=event.id, state=state, version=version
                    )
                ),
            )
            for n, (bet_id, state) in enumerate(states.items())
        ]
        with session_scope() as session:
            assert apply_bet_updates(session=session, topic="bets.state", records=records) == []

    return apply


def test_a_player_sees_each_state_change_of_their_own_bets_as_get_shows_the_bet(
    client: TestClient,
    make_caller: MakeCaller,
    make_event: MakeEvent,
    make_bet: MakeBet,
    open_stream: Callable[..., Any],
    score: Callable[..., None],
) -> None:
    ana, ben = make_caller(), make_caller()
    event = make_event()
    mine = [make_bet(ana, event_id=str(event.id), market=m) for m in ("team_1", "draw")]
    theirs = make_bet(ben, event_id=str(event.id), market="team_1")

    with open_stream(ana) as (stream, missed):
        assert missed == []
        score(event, 1, {mine[0]["id"]: BetState.WINNING, theirs["id"]: BetState.WINNING})
        score(event, 2, {mine[1]["id"]: BetState.WINNING, mine[0]["id"]: BetState.LOSING})
        received = stream.events(3)
        assert stream.nothing_more()

    assert {e.event for e in received} == {"bet"}
    assert (received[0].data["id"], received[0].data["state"]) == (mine[0]["id"], "winning")
    # One transaction's changes come in the order the writer wrote them.
    assert {(e.data["id"], e.data["state"]) for e in received[1:]} == {
        (mine[1]["id"], "winning"),
        (mine[0]["id"], "losing"),
    }
    assert received[0].data == {**mine[0], "state": "winning", "updated_at": ANY}
    for bet in mine:
        current = client.get(f"/bets/{bet['id']}", headers=ana.headers).json()
        assert [e.data for e in received if e.data["id"] == bet["id"]][-1] == current


def test_an_operator_sees_every_bet_or_one_events(
    make_caller: MakeCaller,
    operator: Caller,
    make_event: MakeEvent,
    make_bet: MakeBet,
    open_stream: Callable[..., Any],
    score: Callable[..., None],
) -> None:
    first, second = make_event(), make_event()
    on_first = make_bet(make_caller(), event_id=str(first.id))
    on_second = make_bet(make_caller(), event_id=str(second.id))

    with (
        open_stream(operator) as (everything, _),
        open_stream(operator, params={"event_id": str(second.id)}) as (one_event, _),
    ):
        score(first, 1, {on_first["id"]: BetState.WINNING})
        score(second, 1, {on_second["id"]: BetState.LOSING})

        seen = {e.data["id"]: e.data["state"] for e in everything.events(2)}
        assert seen == {on_first["id"]: "winning", on_second["id"]: "losing"}
        [only] = one_event.events(1)
        assert (only.data["id"], only.data["state"]) == (on_second["id"], "losing")
        assert one_event.nothing_more()


def test_a_player_narrows_to_one_event_and_still_sees_only_their_own(
    make_caller: MakeCaller,
    make_event: MakeEvent,
    make_bet: MakeBet,
    open_stream: Callable[..., Any],
    score: Callable[..., None],
) -> None:
    ana = make_caller()
    first, second = make_event(), make_event()
    mine_first = make_bet(ana, event_id=str(first.id))
    mine_second = make_bet(ana, event_id=str(second.id))
    theirs = make_bet(make_caller(), event_id=str(second.id))

    with open_stream(ana, params={"event_id": str(second.id)}) as (stream, _):
        score(first, 1, {mine_first["id"]: BetState.WINNING})
        score(second, 1, {theirs["id"]: BetState.LOSING, mine_second["id"]: BetState.WINNING})
        [only] = stream.events(1)
        assert stream.nothing_more()

    assert (only.data["id"], only.data["state"]) == (mine_second["id"], "winning")


def test_reconnecting_with_last_event_id_gets_what_was_missed_in_order_then_the_live_ones(
    one_bet: OneBet, open_stream: Callable[..., Any], score: Callable[..., None]
) -> None:
    ana, event, bet = one_bet

    with open_stream(ana) as (stream, _):
        score(event, 1, {bet["id"]: BetState.WINNING})
        [first] = stream.events(1)
    score(event, 2, {bet["id"]: BetState.LOSING})
    score(event, 3, {bet["id"]: BetState.WINNING})

    with open_stream(ana, last_event_id=first.id) as (stream, missed):
        score(event, 4, {bet["id"]: BetState.LOSING})
        # The server may still be reading the last changes when the stream goes live: the
        # missed ones can come just after that comment, still in order, before the new one.
        after = [*missed, *stream.events(3 - len(missed))]
        assert stream.nothing_more()

    assert [e.data["state"] for e in [first, *after]] == ["winning", "losing", "winning", "losing"]
    cursors = [tuple(map(int, e.id.split("-"))) for e in [first, *after]]
    assert cursors == sorted(set(cursors))


def test_a_subscriber_without_last_event_id_starts_with_the_next_change(
    one_bet: OneBet, open_stream: Callable[..., Any], score: Callable[..., None]
) -> None:
    ana, event, bet = one_bet
    score(event, 1, {bet["id"]: BetState.WINNING})

    with open_stream(ana) as (stream, missed):
        score(event, 2, {bet["id"]: BetState.LOSING})
        [only] = stream.events(1)

    assert missed == []
    assert only.data["state"] == "losing"


def test_a_duplicate_update_makes_no_event(
    one_bet: OneBet, open_stream: Callable[..., Any], score: Callable[..., None]
) -> None:
    ana, event, bet = one_bet

    with open_stream(ana) as (stream, _):
        score(event, 1, {bet["id"]: BetState.WINNING})
        score(event, 1, {bet["id"]: BetState.WINNING})  # a replay: the guard drops it
        stream.events(1)
        assert stream.nothing_more()


def test_the_stream_needs_a_token(client: TestClient) -> None:
    assert client.get("/bets/stream").status_code == 401


@pytest.mark.parametrize("cursor", ["yesterday", "1-2", "1-2-3-4", "-1-2-3", "1-2-99999999999"])
def test_a_malformed_last_event_id_is_422(client: TestClient, player: Caller, cursor: str) -> None:
    response = client.get("/bets/stream", headers={**player.headers, "Last-Event-ID": cursor})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Last-Event-ID"]


@pytest.mark.parametrize("method", ["OPTIONS", "PATCH", "DELETE", "POST"])
def test_the_stream_is_a_resource_of_its_own_not_a_bet_id(
    client: TestClient, player: Caller, method: str
) -> None:
    response = client.request(method, "/bets/stream", headers=player.headers)

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


def test_a_malformed_event_id_is_422(client: TestClient, operator: Caller) -> None:
    response = client.get("/bets/stream", params={"event_id": "x"}, headers=operator.headers)

    assert response.status_code == 422


_ONE_CHANGE = text(f"""
    SELECT {BET_JSON_SQL} AS data
    FROM (VALUES (CAST(:bet_id AS uuid), CAST(:user_id AS text), CAST(:event_id AS uuid),
                  CAST(:state AS text), CAST(:at AS timestamptz)))
         AS x(bet_id, user_id, event_id, state, at)
    JOIN bets b ON b.id = x.bet_id
""")


@pytest.mark.parametrize("state", list(BetState))
@pytest.mark.parametrize(
    ("user_id", "at"),
    [
        ("player-1", datetime(2030, 5, 1, 18, 45, tzinfo=UTC)),  # no fraction of a second
        ('o\'brien "the\n\tbold" \x01 ünïcode', datetime(2030, 5, 1, 18, 45, 0, 4000, UTC)),
    ],
)
def test_the_streams_json_of_a_bet_is_byte_for_byte_what_get_sends(
    make_event: MakeEvent,
    store_bet: Callable[..., Bet],
    state: BetState,
    user_id: str,
    at: datetime,
) -> None:
    """Postgres writes the stream's JSON (`BET_JSON_SQL`): it must be `BetPublic`'s own."""
    bet = store_bet(make_event(), amount=Decimal("7.5"))
    row = {"bet_id": bet.id, "user_id": user_id, "event_id": bet.event_id, "state": state.value}
    with session_scope() as session:
        data = session.execute(_ONE_CHANGE, {**row, "at": at}).scalar_one()

    expected = BetPublic.model_validate(bet).model_copy(
        update={
            "user_id": user_id,
            "state": state,
            "payout": settled_payout(state, bet.amount, bet.potential_payout),
            "updated_at": at,
        }
    )
    assert data == expected.model_dump_json()


def test_an_idle_stream_gets_a_keep_alive_comment_every_period(stack: Stack) -> None:
    """The period is BETTING_STREAM_KEEPALIVE_S (15 s at most); here a short one."""

    async def first_sends() -> list[bytes]:
        feed = ChangeFeed(queue_size=10, keep_alive_s=0.1)
        try:
            subscriber = await feed.subscribe(Interest(), None)
            events = feed.events(subscriber)
            async with asyncio.timeout(5):
                return [await anext(events) for _ in range(3)]
        finally:
            await feed.close()

    assert asyncio.run(first_sends()) == [LIVE, KEEP_ALIVE, KEEP_ALIVE]
