"""Re-consuming both topics from the beginning changes nothing."""

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
    event_id = log.create_event()
    wait_for_event(event_id)
    bets = [place_bet(event_id, market) for market in Market for _ in range(3)]
    log.update_event(event_id, state="active")
    log.update_event(event_id, score="0-1")
    log.update_event(event_id, state="finished", score="0-2")
    wait_for(
        lambda: bet_states(event_id)[bets[0].id] == BetState.LOSE.value, what="the bets settled"
    )
    wait_until_idle(stack.broker.address)
    before = snapshot()
    assert before["bets"], "nothing to replay"

    suffix = f"-replay-{uuid.uuid4().hex[:8]}"
    extra_functions.start_all(BETTING_CONSUMER_GROUP_SUFFIX=suffix)
    wait_until_idle(stack.broker.address, suffix, timeout_s=120)
    wait_until_idle(stack.broker.address)

    assert snapshot() == before
