"""The bets to re-score: the scorer streams them and the rebase settles them, from one query."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, col, select

from betting.db import get_engine, settle_bets
from betting.domain import BetState, EventFacts, EventState, Market, Score, score_bet
from betting.models import Bet, Event
from functions.bet_scorer.score import bets_to_rescore
from tests.conftest import Stack
from tests.unit.strategies import make_facts

pytestmark = pytest.mark.integration


def _event_with_a_bet_in_every_state(
    facts: EventFacts, place_bet: Callable[..., Bet]
) -> tuple[uuid.UUID, dict[uuid.UUID, Bet]]:
    """An event row and, for each market, one bet in each bet state: 15 bets."""
    event_id = uuid.uuid4()
    with Session(get_engine()) as session:
        session.add(Event.from_facts(event_id, facts, version=3, at=datetime.now(UTC)))
        session.commit()
    bets = [
        place_bet(event_id, market, state=state.value) for market in Market for state in BetState
    ]
    return event_id, {bet.id: bet for bet in bets}


def _states(event_id: uuid.UUID) -> dict[uuid.UUID, str]:
    with Session(get_engine()) as session:
        query = select(Bet.id, Bet.state).where(col(Bet.event_id) == event_id)
        return {bet_id: state for bet_id, state in session.exec(query)}


@pytest.mark.parametrize(
    ("state", "score"),
    [
        (EventState.CREATED, Score(0, 0)),
        (EventState.ACTIVE, Score(0, 0)),
        (EventState.ACTIVE, Score(2, 1)),
        (EventState.FINISHED, Score(1, 3)),
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
    assert len(stale) == 12  # of each market's five states, one is already right

    with Session(get_engine()) as session:
        scored = list(bets_to_rescore(session=session, event_id=event_id))
    assert {update.bet_id: update.state for update in scored} == stale
    assert len(scored) == len(stale)  # each bet once
    assert {update.version for update in scored} == {3}

    with Session(get_engine()) as session, session.begin():
        settle_bets(session, event_id, facts)
    assert _states(event_id) == {bet_id: target.value for bet_id, target in should_be.items()}

    with Session(get_engine()) as session:
        assert list(bets_to_rescore(session=session, event_id=event_id)) == []
