"""`score_bet`: a bet's state from (market, event state, score); what it pays; what moves bets."""

import dataclasses
import inspect
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from betting.domain import (
    SCORING_INPUTS,
    SETTLEMENTS,
    BetState,
    EventFacts,
    EventState,
    Market,
    Score,
    changed_fields,
    moves_bets,
    potential_payout,
    score_bet,
    settled_payout,
)
from betting.messages import EventUpdated, encode
from betting.models import EventUpdate
from functions.bet_scorer.score import Scorer
from tests.unit.strategies import (
    EVENT_DATE,
    FAST,
    event_states,
    goals,
    make_facts,
    markets,
    money,
    scores,
)

TEAM_1, TEAM_2, DRAW = Market.TEAM_1, Market.TEAM_2, Market.DRAW
SETTLED = {BetState.WINNING: BetState.WIN, BetState.LOSING: BetState.LOSE}


# --- Examples -----------------------------------------------------------------------------


@pytest.mark.parametrize("market", list(Market))
@pytest.mark.parametrize("score", ["0-0", "1-0", "0-1", "3-3", "999-0", "0-999", "999-999"])
def test_created_event_leaves_every_bet_at_none(market: Market, score: str) -> None:
    assert score_bet(market, EventState.CREATED, Score.parse(score)) is BetState.NONE


@pytest.mark.parametrize(
    ("score", "market", "expected"),
    [
        ("1-0", TEAM_1, BetState.WINNING),
        ("1-0", TEAM_2, BetState.LOSING),
        ("1-0", DRAW, BetState.LOSING),
        ("0-1", TEAM_1, BetState.LOSING),
        ("0-1", TEAM_2, BetState.WINNING),
        ("0-1", DRAW, BetState.LOSING),
        ("0-0", TEAM_1, BetState.LOSING),
        ("0-0", TEAM_2, BetState.LOSING),
        ("0-0", DRAW, BetState.WINNING),
        ("2-2", TEAM_1, BetState.LOSING),
        ("2-2", TEAM_2, BetState.LOSING),
        ("2-2", DRAW, BetState.WINNING),
        ("5-4", TEAM_1, BetState.WINNING),
        ("4-5", TEAM_2, BetState.WINNING),
        ("10-9", TEAM_1, BetState.WINNING),
        ("9-10", TEAM_1, BetState.LOSING),
        ("999-998", TEAM_1, BetState.WINNING),
        ("998-999", TEAM_2, BetState.WINNING),
    ],
)
def test_active_event_marks_only_the_leaders_market_winning(
    score: str, market: Market, expected: BetState
) -> None:
    assert score_bet(market, EventState.ACTIVE, Score.parse(score)) is expected


@pytest.mark.parametrize(
    ("score", "market", "expected"),
    [
        ("1-0", TEAM_1, BetState.WIN),
        ("1-0", TEAM_2, BetState.LOSE),
        ("1-0", DRAW, BetState.LOSE),
        ("0-1", TEAM_1, BetState.LOSE),
        ("0-1", TEAM_2, BetState.WIN),
        ("0-1", DRAW, BetState.LOSE),
        ("0-0", TEAM_1, BetState.LOSE),
        ("0-0", TEAM_2, BetState.LOSE),
        ("0-0", DRAW, BetState.WIN),
        ("3-3", DRAW, BetState.WIN),
        ("3-3", TEAM_1, BetState.LOSE),
        ("10-9", TEAM_1, BetState.WIN),
        ("9-10", TEAM_2, BetState.WIN),
    ],
)
def test_finished_event_settles_the_winners_market_win_and_the_others_lose(
    score: str, market: Market, expected: BetState
) -> None:
    assert score_bet(market, EventState.FINISHED, Score.parse(score)) is expected


@pytest.mark.parametrize("market", list(Market))
@pytest.mark.parametrize("score", ["0-0", "1-0", "0-1", "2-2", "999-0"])
def test_cancelled_event_voids_every_bet_whatever_the_score(market: Market, score: str) -> None:
    assert score_bet(market, EventState.CANCELLED, Score.parse(score)) is BetState.VOID


def test_draw_market_is_winning_on_level_score() -> None:
    assert score_bet(DRAW, EventState.ACTIVE, Score(1, 1)) is BetState.WINNING


def test_draw_market_is_losing_when_one_team_leads() -> None:
    assert score_bet(DRAW, EventState.ACTIVE, Score(2, 1)) is BetState.LOSING


def test_goals_are_compared_as_numbers_not_text() -> None:
    # "10" < "9" as text; a textual comparison would make team_2 the leader.
    assert score_bet(TEAM_1, EventState.ACTIVE, Score.parse("10-9")) is BetState.WINNING


@pytest.mark.parametrize(
    ("score", "winner"), [("2-1", TEAM_1), ("1-2", TEAM_2), ("1-1", DRAW), ("0-0", DRAW)]
)
def test_created_event_that_finishes_directly_settles_win_and_lose(
    score: str, winner: Market
) -> None:
    final = Score.parse(score)
    before = {market: score_bet(market, EventState.CREATED, final) for market in Market}
    after = {market: score_bet(market, EventState.FINISHED, final) for market in Market}
    assert set(before.values()) == {BetState.NONE}
    assert after == {
        market: BetState.WIN if market is winner else BetState.LOSE for market in Market
    }


# --- Properties ---------------------------------------------------------------------------


def _leader(team_1: int, team_2: int) -> Market:
    """An independent statement of who the score favours."""
    if team_1 == team_2:
        return DRAW
    return TEAM_1 if team_1 > team_2 else TEAM_2


@FAST
@given(score=scores)
def test_created_event_scores_every_market_none(score: Score) -> None:
    assert {score_bet(market, EventState.CREATED, score) for market in Market} == {BetState.NONE}


@FAST
@given(score=scores)
def test_exactly_one_market_is_winning_while_active(score: Score) -> None:
    states = [score_bet(market, EventState.ACTIVE, score) for market in Market]
    assert states.count(BetState.WINNING) == 1
    assert states.count(BetState.LOSING) == 2


@FAST
@given(score=scores)
def test_exactly_one_market_wins_when_finished(score: Score) -> None:
    states = [score_bet(market, EventState.FINISHED, score) for market in Market]
    assert states.count(BetState.WIN) == 1
    assert states.count(BetState.LOSE) == 2


@FAST
@given(team_1=goals, team_2=goals, state=st.sampled_from([EventState.ACTIVE, EventState.FINISHED]))
def test_the_winning_market_is_the_one_the_goals_favour(
    team_1: int, team_2: int, state: EventState
) -> None:
    ahead = BetState.WINNING if state is EventState.ACTIVE else BetState.WIN
    winners = [m for m in Market if score_bet(m, state, Score(team_1, team_2)) is ahead]
    assert winners == [_leader(team_1, team_2)]


@FAST
@given(team_1=goals, team_2=goals, state=event_states)
def test_swapping_teams_and_goals_swaps_team_results(
    team_1: int, team_2: int, state: EventState
) -> None:
    score, swapped = Score(team_1, team_2), Score(team_2, team_1)
    assert score_bet(TEAM_1, state, score) is score_bet(TEAM_2, state, swapped)
    assert score_bet(TEAM_2, state, score) is score_bet(TEAM_1, state, swapped)
    assert score_bet(DRAW, state, score) is score_bet(DRAW, state, swapped)


@FAST
@given(score=scores)
def test_every_market_is_void_once_cancelled(score: Score) -> None:
    assert {score_bet(market, EventState.CANCELLED, score) for market in Market} == {BetState.VOID}


@FAST
@given(market=markets, score=scores)
def test_finished_result_is_the_active_result_settled(market: Market, score: Score) -> None:
    active = score_bet(market, EventState.ACTIVE, score)
    assert score_bet(market, EventState.FINISHED, score) is SETTLED[active]


@FAST
@given(market=markets, state=event_states, score=scores)
def test_bet_state_belongs_to_the_event_states_vocabulary(
    market: Market, state: EventState, score: Score
) -> None:
    allowed = {
        EventState.CREATED: {BetState.NONE},
        EventState.ACTIVE: {BetState.WINNING, BetState.LOSING},
        EventState.FINISHED: {BetState.WIN, BetState.LOSE},
        EventState.CANCELLED: {BetState.VOID},
    }
    assert score_bet(market, state, score) in allowed[state]


@FAST
@given(
    market=markets,
    state=event_states,
    score=scores,
    others=st.lists(st.tuples(markets, event_states, scores), max_size=10),
)
def test_scoring_is_a_pure_function_of_its_inputs(
    market: Market,
    state: EventState,
    score: Score,
    others: list[tuple[Market, EventState, Score]],
) -> None:
    first = score_bet(market, state, score)
    for other in others:
        score_bet(*other)
    # An equal but distinct Score object must give the same answer as the original.
    assert score_bet(market, state, Score(score.team_1, score.team_2)) is first


# --- What a bet pays ---------------------------------------------------------------------

AMOUNT, POTENTIAL = Decimal("10.00"), Decimal("21.50")


def test_every_bet_state_says_what_it_pays() -> None:
    assert set(SETTLEMENTS) == set(BetState)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (BetState.NONE, None),
        (BetState.WINNING, None),
        (BetState.LOSING, None),
        (BetState.WIN, POTENTIAL),
        (BetState.LOSE, Decimal("0.00")),
        (BetState.VOID, AMOUNT),
    ],
)
def test_a_bet_pays_nothing_until_settled_then_winnings_nothing_or_its_stake(
    state: BetState, expected: Decimal | None
) -> None:
    assert settled_payout(state, AMOUNT, POTENTIAL) == expected


def test_a_lost_bet_pays_zero_with_two_places() -> None:
    assert str(settled_payout(BetState.LOSE, AMOUNT, POTENTIAL)) == "0.00"


@FAST
@given(state=event_states, score=scores, amount=money, odds=money)
def test_a_bet_is_paid_exactly_when_its_event_is_finished_or_cancelled(
    state: EventState, score: Score, amount: Decimal, odds: Decimal
) -> None:
    potential = potential_payout(amount, odds)
    paid = {
        market: settled_payout(score_bet(market, state, score), amount, potential)
        for market in Market
    }
    if state is EventState.FINISHED:
        winner = _leader(score.team_1, score.team_2)
        assert paid == {m: potential if m is winner else Decimal(0) for m in Market}
    elif state is EventState.CANCELLED:
        assert paid == dict.fromkeys(Market, amount)
    else:
        assert paid == dict.fromkeys(Market, None)


# --- What moves bets ----------------------------------------------------------------------


def test_the_scoring_inputs_are_what_score_bet_reads_of_an_event() -> None:
    assert set(inspect.signature(score_bet).parameters) - {"market"} == SCORING_INPUTS


@pytest.mark.parametrize(
    ("changed", "moves"),
    [
        ({"state"}, True),
        ({"score"}, True),
        ({"state", "score", "odds"}, True),
        ({"odds", "team_1", "team_2", "type", "event_date", "deadline"}, False),
        (set(), False),
    ],
)
def test_only_a_change_of_state_or_score_moves_bets(changed: set[str], moves: bool) -> None:
    assert moves_bets(changed) is moves


@FAST
@given(
    before=st.builds(make_facts, state=event_states, score=scores),
    changes=st.fixed_dictionaries(
        {},
        optional={
            "state": event_states,
            "score": scores,
            "team_1": st.sampled_from(["Ajax", "Feyenoord"]),
            "deadline": st.just(EVENT_DATE),
        },
    ),
)
def test_bets_keep_their_state_unless_a_change_moves_them(
    before: EventFacts, changes: dict[str, Any]
) -> None:
    after = dataclasses.replace(before, **changes)
    changed = changed_fields(before, after)
    assert changed == {name for name, value in changes.items() if getattr(before, name) != value}
    # The event writer moves score_version exactly when state or score takes a new value.
    assert moves_bets(changed) == ((before.state, before.score) != (after.state, after.score))
    if not moves_bets(changed):
        for market in Market:
            kept = score_bet(market, after.state, after.score)
            assert kept is score_bet(market, before.state, before.score)


def _update(changes: dict[str, Any]) -> bytes:
    message = EventUpdated(
        event_id=uuid.uuid4(),
        sent_at=EVENT_DATE,
        changes=EventUpdate.model_validate(changes),
    )
    return encode(message)


def _no_database() -> None:
    raise AssertionError("the scorer went to the database")


@pytest.mark.parametrize(
    "changes",
    [
        {"odds": {"team_1": "1.50", "team_2": "2.00", "draw": "3.00"}},
        {"team_1": "Feyenoord", "deadline": "2030-06-01T16:00:00Z"},
    ],
)
def test_the_scorer_passes_over_a_change_that_moves_no_bets(
    changes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("functions.bet_scorer.score.get_engine", _no_database)
    assert list(Scorer()(_update(changes), partition=0, offset=1)) == []


@pytest.mark.parametrize("changes", [{"state": "active"}, {"score": "1-0", "type": "hockey"}])
def test_the_scorer_rescores_after_a_change_that_may_move_bets(
    changes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("functions.bet_scorer.score.get_engine", _no_database)
    with pytest.raises(AssertionError, match="went to the database"):
        list(Scorer()(_update(changes), partition=0, offset=1))
