"""Messages the functions must refuse reach the dead-letter topic and the stream moves on:
a score sent with the move out of `created` (DESIGN.md rule 4) and a bet update whose version
no Postgres bigint holds."""

import json
from collections.abc import Callable
from decimal import Decimal

import pytest

from betting import topics
from betting.domain import BetState, EventState, Market
from betting.models import Bet
from tests.conftest import Stack
from tests.integration.conftest import (
    Functions,
    Log,
    bet_states,
    dead_letters,
    wait_for,
    wait_for_event,
    wait_until_consumed,
)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("state", [EventState.ACTIVE, EventState.FINISHED])
def test_a_score_sent_with_the_move_out_of_created_is_dead_lettered(
    functions: Functions, log: Log, stack: Stack, state: EventState
) -> None:
    event_id = log.create_event()
    wait_for_event(event_id)
    offset = log.update_event(event_id, state=state.value, score="2-0")
    log.update_event(event_id, odds={"team_1": "1.50", "team_2": "4.00", "draw": "3.00"})

    event = wait_for_event(event_id, odds_team_1=Decimal("1.50"))
    assert (event.state, str(event.score)) == (EventState.CREATED.value, "0-0")
    assert event.version > offset
    reasons = dead_letters(stack.broker.address, topics.EVENTS)[str(event_id)]
    assert len(reasons) == 1 and "score" in reasons[0], reasons


def test_a_bet_update_past_bigint_is_dead_lettered_and_the_writer_carries_on(
    functions: Functions, log: Log, place_bet: Callable[..., Bet], stack: Stack
) -> None:
    event_id = log.create_event()
    wait_for_event(event_id)
    bet = place_bet(event_id, Market.DRAW)
    value = {
        "kind": "bet_scored",
        "bet_id": str(bet.id),
        "event_id": str(event_id),
        "state": "win",
        "version": 2**63,
    }
    partition, offset = log.send(topics.BETS, str(bet.id), json.dumps(value).encode())
    wait_until_consumed(
        stack.broker.address, topics.GROUPS.bet_writer, topics.BETS, partition, offset
    )
    log.update_event(event_id, state="active")

    wait_for(lambda: bet_states(event_id)[bet.id] == BetState.WINNING.value, what="bet scored")
    reasons = dead_letters(stack.broker.address, topics.BETS)[str(bet.id)]
    assert any("version" in reason for reason in reasons), reasons
    assert all(component.running() for component in functions.running)
