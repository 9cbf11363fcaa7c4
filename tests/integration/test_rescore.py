"""The bets to re-score: the scorer streams them and the rebase settles them, from one query."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlmodel import Session, col, select

from betting.db import get_engine, settle_bets
from betting.domain import (
    BetState,
    EventFacts,
    EventState,
    Market,
    Score,
    score_bet,
    settled_payout,
)
from betting.messages import BetScored
from betting.models import Bet, Event
from functions.bet_scorer.score import bets_to_rescore
from tests.conftest import Stack
from tests.unit.strategies import make_facts

pytestmark = pytest.mark.integration


def _event_with_a_bet_in_every_state(
    facts: EventFacts, place_bet: Callable[..., Bet]
) -> tuple[uuid.UUID, dict[uuid.UUID, Bet]]:
    """An event row and, for each market, one bet in each bet state: 18 bets."""
    event_id = uuid.uuid4()
    with Session(get_engine()) as session:
        session.add(Event.from_facts(event_id, facts, version=3, at=datetime.now(UTC)))
        session.commit()
    bets = [
        place_bet(event_id, market, state=state.value) for market in Market for state in BetState
    ]
    return event_id, {bet.id: bet for bet in bets}


def _states(event_id: uuid.UUID) -> dict[uuid.UUID, tuple[str, Decimal | None]]:
    """Each bet's state and payout."""
    with Session(get_engine()) as session:
        query = select(Bet.id, Bet.state, col(Bet.payout)).where(col(Bet.event_id) == event_id)
        return {bet_id: (state, payout) for bet_id, state, payout in session.exec(query)}


@pytest.mark.parametrize(
    ("state", "score"),
    [
        (EventState.CREATED, Score(0, 0)),
        (EventState.ACTIVE, Score(0, 0)),
        (EventState.ACTIVE, Score(2, 1)),
        (EventState.FINISHED, Score(1, 3)),
        (EventState.CANCELLED, Score(1, 0)),
    ],
)
def test_the_scorer_and_the_rebase_settle_agree_on_the_bets_to_rescore(
    stack: Stack, place_bet: Callable[..., Bet], state: EventState, score: Score
) -> None:
    facts = make_facts(state=state, score=score)
    event_id, bets = _event_with_a_bet_in_every_state(facts, place_bet)
    should_be = {
        bet_id: score_bet(Market(bet.market), state, score) for bet_id, bet in bets.items()
    }
    stale = {bet_id: target for bet_id, target in should_be.items() if bets[bet_id].state != target}
    assert len(stale) == 15  # of each market's six states, one is already right

    with Session(get_engine()) as session:
        scored = [
            BetScored.model_validate_json(record.value)
            for record in bets_to_rescore(session=session, event_id=event_id)
        ]
    assert {update.bet_id: update.state for update in scored} == stale
    assert len(scored) == len(stale)  # each bet once
    assert {update.version for update in scored} == {3}

    with Session(get_engine()) as session, session.begin():
        settle_bets(session, event_id, facts)
    paid = {
        bet_id: settled_payout(target, bets[bet_id].amount, bets[bet_id].potential_payout)
        for bet_id, target in should_be.items()
    }
    assert _states(event_id) == {
        bet_id: (target.value, paid[bet_id]) for bet_id, target in should_be.items()
    }

    with Session(get_engine()) as session:
        assert list(bets_to_rescore(session=session, event_id=event_id)) == []
