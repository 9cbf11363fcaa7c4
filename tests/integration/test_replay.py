"""Re-consuming both topics from the beginning changes nothing, for a finished match and a
cancelled one alike: states, payouts and versions stay as they are."""

import uuid
from collections.abc import Callable

import pytest

from betting.domain import BetState, Market
from betting.models import Bet
from tests.conftest import Stack
from tests.integration.conftest import (
    Functions,
    Log,
    bet_states,
    snapshot,
    wait_for,
    wait_for_event,
    wait_until_idle,
)

pytestmark = pytest.mark.e2e


def test_replay_with_fresh_consumer_groups_changes_no_row(
    stack: Stack,
    functions: Functions,
    extra_functions: Functions,
    log: Log,
    place_bet: Callable[..., Bet],
) -> None:
    event_id, called_off = log.create_event(), log.create_event()
    wait_for_event(event_id)
    wait_for_event(called_off)
    bets = [place_bet(event_id, market) for market in Market for _ in range(3)]
    voided = [place_bet(called_off, market) for market in Market]
    log.update_event(event_id, state="active")
    log.update_event(called_off, state="active")
    log.update_event(event_id, score="0-1")
    log.update_event(called_off, score="1-0")
    log.update_event(event_id, state="finished", score="0-2")
    log.update_event(called_off, state="cancelled")
    log.update_event(called_off, score="2-0")  # dead-lettered again on replay
    wait_for(
        lambda: bet_states(event_id)[bets[0].id] == BetState.LOSE.value, what="the bets settled"
    )
    void = {bet.id: BetState.VOID.value for bet in voided}
    wait_for(lambda: bet_states(called_off) == void, what="the cancelled match's bets void")
    wait_until_idle(stack.broker.address)
    before = snapshot()
    assert before["bets"], "nothing to replay"

    suffix = f"-replay-{uuid.uuid4().hex[:8]}"
    extra_functions.start_all(BETTING_CONSUMER_GROUP_SUFFIX=suffix)
    wait_until_idle(stack.broker.address, suffix, timeout_s=120)
    wait_until_idle(stack.broker.address)

    assert snapshot() == before
