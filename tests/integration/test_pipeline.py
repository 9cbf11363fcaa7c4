"""The three functions together, fed through the log as the line provider feeds them."""

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session

from betting import topics
from betting.db import get_engine
from betting.domain import BetState, EventState, Market, settled_payout
from betting.messages import BetScored, encode
from betting.models import Bet
from tests.conftest import Stack
from tests.integration.conftest import (
    Functions,
    Log,
    bet_states,
    dead_letters,
    payouts,
    read_event,
    wait_for,
    wait_for_event,
    wait_until_consumed,
    wait_until_idle,
)

pytestmark = pytest.mark.e2e

WIN = {
    Market.TEAM_1: BetState.WINNING,
    Market.TEAM_2: BetState.LOSING,
    Market.DRAW: BetState.LOSING,
}


def test_event_messages_are_applied_in_log_order(functions: Functions, log: Log) -> None:
    event_id = log.create_event()
    log.update_event(event_id, state="active")
    log.update_event(event_id, score="1-0")
    log.update_event(event_id, score="1-1", odds={"team_1": "1.50", "team_2": "1.60", "draw": "9"})
    last = log.update_event(event_id, state="finished", score="2-1")

    event = wait_for_event(event_id, state="finished")
    assert str(event.score) == "2-1"
    assert str(event.odds_draw) == "9.00"
    # The versions are the log position of the last message applied, which changed the score.
    assert (event.version, event.score_version) == (last, last)


def test_a_change_that_moves_no_bet_keeps_the_score_version(functions: Functions, log: Log) -> None:
    event_id = log.create_event()
    log.update_event(event_id, state="active")
    kickoff = log.update_event(event_id, score="1-0")
    odds = log.update_event(event_id, odds={"team_1": "1.50", "team_2": "1.60", "draw": "9"})

    event = wait_for_event(event_id, version=odds)
    assert event.score_version == kickoff


def test_bets_follow_the_match(
    functions: Functions, log: Log, place_bet: Callable[..., Bet]
) -> None:
    event_id = log.create_event()
    wait_for_event(event_id)
    bets = {market: place_bet(event_id, market) for market in Market}

    def states() -> dict[Market, str]:
        current = bet_states(event_id)
        return {market: current[bet.id] for market, bet in bets.items()}

    def expect(expected: dict[Market, BetState]) -> None:
        wanted = {market: state.value for market, state in expected.items()}
        wait_for(lambda: states() == wanted, what=f"bets {wanted}")

    log.update_event(event_id, state="active")
    expect(
        {
            Market.TEAM_1: BetState.LOSING,
            Market.TEAM_2: BetState.LOSING,
            Market.DRAW: BetState.WINNING,
        }
    )
    log.update_event(event_id, score="1-0")
    expect(WIN)
    log.update_event(event_id, score="1-2")
    expect(
        {
            Market.TEAM_1: BetState.LOSING,
            Market.TEAM_2: BetState.WINNING,
            Market.DRAW: BetState.LOSING,
        }
    )
    log.update_event(event_id, state="finished", score="3-2")
    expect({Market.TEAM_1: BetState.WIN, Market.TEAM_2: BetState.LOSE, Market.DRAW: BetState.LOSE})
    assert payouts(event_id) == {
        bets[Market.TEAM_1].id: bets[Market.TEAM_1].potential_payout,
        bets[Market.TEAM_2].id: Decimal("0.00"),
        bets[Market.DRAW].id: Decimal("0.00"),
    }


def test_a_cancelled_match_voids_every_bet_and_pays_the_stakes_back(
    functions: Functions, log: Log, place_bet: Callable[..., Bet], stack: Stack
) -> None:
    event_id = log.create_event()
    wait_for_event(event_id)
    bets = [
        place_bet(event_id, market, amount=Decimal(f"{n + 1}.25"))
        for n, market in enumerate(Market)
    ]
    log.update_event(event_id, state="active")
    log.update_event(event_id, score="1-0")
    wait_for(lambda: bet_states(event_id)[bets[0].id] == BetState.WINNING.value, what="live")
    assert set(payouts(event_id).values()) == {None}  # a live bet has paid nothing yet

    log.update_event(event_id, state="cancelled")
    void = {bet.id: BetState.VOID.value for bet in bets}
    wait_for(lambda: bet_states(event_id) == void, what="every bet void")
    assert payouts(event_id) == {bet.id: bet.amount for bet in bets}

    # Cancelled is final: whatever comes after is dead-lettered and changes nothing.
    log.update_event(event_id, score="2-0")
    log.update_event(event_id, state="finished")
    log.update_event(event_id, state="cancelled")
    wait_until_idle(stack.broker.address)
    event = wait_for_event(event_id, state=EventState.CANCELLED.value)
    assert str(event.score) == "1-0"
    assert bet_states(event_id) == void
    assert payouts(event_id) == {bet.id: bet.amount for bet in bets}
    reasons = dead_letters(stack.broker.address, topics.EVENTS).get(str(event_id))
    assert reasons == ["a cancelled event cannot change"] * 3


def test_a_team_change_on_an_event_with_bets_is_dead_lettered_and_odds_still_change(
    functions: Functions, log: Log, place_bet: Callable[..., Bet], stack: Stack
) -> None:
    event_id = log.create_event(team_1="Ajax", team_2="PSV")
    wait_for_event(event_id)
    bet = place_bet(event_id, Market.TEAM_1, odds=Decimal("2.00"))
    log.update_event(event_id, team_1="Twente")
    log.update_event(event_id, team_1="PSV", team_2="Ajax")
    log.update_event(event_id, odds={"team_1": "1.40", "team_2": "4.00", "draw": "5.00"})

    event = wait_for_event(event_id, odds_team_1=Decimal("1.40"))
    wait_until_idle(stack.broker.address)
    assert (event.team_1, event.team_2) == ("Ajax", "PSV")
    reasons = dead_letters(stack.broker.address, topics.EVENTS).get(str(event_id))
    assert reasons == ["the event has bets: its teams can no longer change"] * 2
    with Session(get_engine()) as session:
        stored = session.get(Bet, bet.id)
        assert stored is not None
        assert stored.odds == Decimal("2.00")  # a bet keeps the odds it was placed at


def test_poison_and_illegal_event_messages_are_dead_lettered(
    functions: Functions, log: Log, stack: Any
) -> None:
    poison_key = f"poison-{uuid.uuid4()}"
    log.send(topics.EVENTS, poison_key, b"{not json")
    event_id = log.create_event()
    log.update_event(event_id, score="1-0")  # a score while still created
    log.update_event(event_id, state="finished")
    log.update_event(event_id, state="active")  # finished → active is illegal
    event = wait_for_event(event_id, state=EventState.FINISHED.value)
    assert str(event.score) == "0-0"

    letters = dead_letters(stack.broker.address, topics.EVENTS)
    assert any("unparseable" in reason for reason in letters[poison_key])
    ours = letters[str(event_id)]
    assert len(ours) == 2, ours
    assert any("score" in reason for reason in ours)
    assert any("finished" in reason for reason in ours)


def test_poison_bet_update_is_dead_lettered_and_writer_carries_on(
    functions: Functions, log: Log, place_bet: Callable[..., Bet], stack: Stack
) -> None:
    event_id = log.create_event()
    wait_for_event(event_id)
    bet = place_bet(event_id, Market.DRAW)
    poison_key = f"poison-{uuid.uuid4()}"
    log.send(topics.BETS, poison_key, b'{"kind": "bet_scored", "state": "bogus"}')
    log.update_event(event_id, state="active")
    wait_for(lambda: bet_states(event_id)[bet.id] == BetState.WINNING.value, what="bet scored")

    assert poison_key in dead_letters(stack.broker.address, topics.BETS)


@pytest.mark.parametrize(
    ("change", "after"),
    [({"score": "1-1"}, BetState.LOSING), ({"state": "cancelled"}, BetState.VOID)],
    ids=["equaliser", "cancellation"],
)
def test_a_stale_or_repeated_bet_update_never_overwrites_a_newer_one(
    functions: Functions,
    log: Log,
    place_bet: Callable[..., Bet],
    stack: Stack,
    change: dict[str, str],
    after: BetState,
) -> None:
    event_id = log.create_event()
    wait_for_event(event_id)
    bet = place_bet(event_id, Market.TEAM_1)
    log.update_event(event_id, state="active")
    log.update_event(event_id, score="1-0")
    live = wait_for_event(event_id, state="active")
    wait_for(lambda: bet_states(event_id)[bet.id] == BetState.WINNING.value, what="winning")
    log.update_event(event_id, **change)
    wait_for(lambda: bet_states(event_id)[bet.id] == after.value, what=after.value)
    newer = read_event(event_id)
    assert newer is not None

    # A late copy of the update from before the change, and a repeat of the one after it.
    for state, version in [(BetState.WINNING, live.score_version), (after, newer.score_version)]:
        late = BetScored(bet_id=bet.id, event_id=event_id, state=state, version=version)
        partition, offset = log.send(topics.BETS, str(bet.id), encode(late))
    # The bet writer commits an offset only once the batch before it is written.
    wait_until_consumed(
        stack.broker.address, topics.GROUPS.bet_writer, topics.BETS, partition, offset
    )
    assert bet_states(event_id)[bet.id] == after.value
    assert payouts(event_id) == {bet.id: settled_payout(after, bet.amount, bet.potential_payout)}
