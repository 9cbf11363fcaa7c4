"""The three functions together, fed through the log as the line provider feeds them."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from betting import topics
from betting.domain import BetState, EventState, Market
from betting.messages import BetScored, encode
from betting.models import Bet
from tests.conftest import Stack
from tests.integration.conftest import (
    Functions,
    Log,
    bet_states,
    read_topic,
    wait_for,
    wait_for_event,
    wait_until_consumed,
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
    kickoff = log.update_event(event_id, state="active", score="1-0")
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

    dead = read_topic(stack.broker.address, topics.dlq(topics.EVENTS))
    reasons = {
        (message.key().decode(), dict(message.headers())["reason"].decode()) for message in dead
    }
    assert any(key == poison_key and "unparseable" in reason for key, reason in reasons)
    ours = sorted(reason for key, reason in reasons if key == str(event_id))
    assert len(ours) == 2, ours
    assert any("score" in reason for reason in ours)
    assert any("finished" in reason for reason in ours)


def test_poison_bet_update_is_dead_lettered_and_writer_carries_on(
    functions: Functions, log: Log, place_bet: Callable[..., Bet], stack: Any
) -> None:
    event_id = log.create_event()
    wait_for_event(event_id)
    bet = place_bet(event_id, Market.DRAW)
    poison_key = f"poison-{uuid.uuid4()}"
    log.send(topics.BETS, poison_key, b'{"kind": "bet_scored", "state": "bogus"}')
    log.update_event(event_id, state="active")
    wait_for(lambda: bet_states(event_id)[bet.id] == BetState.WINNING.value, what="bet scored")

    dead = read_topic(stack.broker.address, topics.dlq(topics.BETS))
    assert any(message.key().decode() == poison_key for message in dead)


def test_stale_bet_update_never_overwrites_a_newer_one(
    functions: Functions, log: Log, place_bet: Callable[..., Bet], stack: Stack
) -> None:
    event_id = log.create_event()
    wait_for_event(event_id)
    bet = place_bet(event_id, Market.TEAM_1)
    log.update_event(event_id, state="active", score="1-0")
    event = wait_for_event(event_id, state="active")
    wait_for(lambda: bet_states(event_id)[bet.id] == BetState.WINNING.value, what="winning")
    log.update_event(event_id, score="1-1")
    wait_for(lambda: bet_states(event_id)[bet.id] == BetState.LOSING.value, what="losing")

    # A late duplicate of the first update arrives: it must change nothing.
    stale = BetScored(
        bet_id=bet.id, event_id=event_id, state=BetState.WINNING, version=event.score_version
    )
    partition, offset = log.send(topics.BETS, str(bet.id), encode(stale))
    # The bet writer commits an offset only once the batch before it is written.
    wait_until_consumed(
        stack.broker.address, topics.GROUPS.bet_writer, topics.BETS, partition, offset
    )
    assert bet_states(event_id)[bet.id] == BetState.LOSING.value
