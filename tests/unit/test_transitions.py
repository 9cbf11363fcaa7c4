"""Event life cycle: `check_transition`, `apply_changes`, `new_event`, the event rules, and
what may no longer change once an event has bets (`check_teams_kept`)."""

import dataclasses
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from betting.domain import (
    LEGAL_TRANSITIONS,
    NIL_NIL,
    DomainError,
    EventFacts,
    EventState,
    IllegalTransition,
    InvalidEvent,
    Odds,
    Score,
    ScoreNotAllowed,
    TeamsLocked,
    apply_changes,
    changed_fields,
    check_deadline,
    check_teams_kept,
    check_transition,
    is_open,
    new_event,
)
from tests.unit.strategies import EVENT_DATE, FAST, STATE_ORDER, event_states, make_facts

CREATED, ACTIVE = EventState.CREATED, EventState.ACTIVE
FINISHED, CANCELLED = EventState.FINISHED, EventState.CANCELLED
FINAL = [FINISHED, CANCELLED]

ALL_PAIRS = [(current, new) for current in EventState for new in EventState]
LEGAL_PAIRS = {
    (CREATED, CREATED),
    (CREATED, ACTIVE),
    (CREATED, FINISHED),
    (ACTIVE, ACTIVE),
    (ACTIVE, FINISHED),
    (FINISHED, FINISHED),
    (CREATED, CANCELLED),
    (ACTIVE, CANCELLED),
    (CANCELLED, CANCELLED),
}


def _at(state: EventState, score: Score = NIL_NIL) -> EventFacts:
    return make_facts(state=state, score=score)


# --- check_transition ---------------------------------------------------------------------


@pytest.mark.parametrize(("current", "new"), sorted(LEGAL_PAIRS))
def test_legal_transition_or_staying_put_is_allowed(current: EventState, new: EventState) -> None:
    check_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"), sorted(pair for pair in ALL_PAIRS if pair not in LEGAL_PAIRS)
)
def test_backward_transition_is_illegal(current: EventState, new: EventState) -> None:
    with pytest.raises(IllegalTransition, match=f"from {current} to {new}"):
        check_transition(current, new)


def test_legal_transitions_table_only_moves_forward() -> None:
    assert {
        (current, new) for current, targets in LEGAL_TRANSITIONS.items() for new in targets
    } == {
        (CREATED, ACTIVE),
        (CREATED, FINISHED),
        (ACTIVE, FINISHED),
        (CREATED, CANCELLED),
        (ACTIVE, CANCELLED),
    }


@pytest.mark.parametrize("final", FINAL)
@pytest.mark.parametrize("new", list(EventState))
def test_finished_and_cancelled_are_final(final: EventState, new: EventState) -> None:
    if new is final:
        check_transition(final, new)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(final, new)


# --- apply_changes: state and score -------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (CREATED, ACTIVE),
        (CREATED, FINISHED),
        (ACTIVE, FINISHED),
        (CREATED, CANCELLED),
        (ACTIVE, CANCELLED),
    ],
)
def test_event_moves_forward_along_a_legal_transition(current: EventState, new: EventState) -> None:
    assert apply_changes(_at(current), {"state": new}).state is new


def test_active_event_cannot_go_back_to_created() -> None:
    with pytest.raises(IllegalTransition):
        apply_changes(_at(ACTIVE, Score(1, 0)), {"state": CREATED})


@pytest.mark.parametrize(
    "changes",
    [
        {"state": CREATED},
        {"state": ACTIVE},
        {"state": FINISHED},
        {"state": CANCELLED},
        {"score": Score(2, 2)},
        {"type": "hockey"},
        {"team_1": "Feyenoord"},
        {"odds": Odds(team_1=Decimal("1.01"), team_2=Decimal("1.01"), draw=Decimal("1.01"))},
        {"deadline": EVENT_DATE - timedelta(days=1)},
        {"event_date": EVENT_DATE + timedelta(days=1)},
    ],
    ids=lambda changes: ",".join(changes),
)
@pytest.mark.parametrize("final", FINAL)
def test_finished_or_cancelled_event_cannot_change_at_all(
    final: EventState, changes: dict[str, Any]
) -> None:
    with pytest.raises(IllegalTransition, match=f"a {final} event cannot change"):
        apply_changes(_at(final, Score(2, 1)), changes)


@pytest.mark.parametrize("final", FINAL)
def test_finished_or_cancelled_event_with_no_changes_stays_as_it_is(final: EventState) -> None:
    event = _at(final, Score(2, 1))
    assert apply_changes(event, {}) == event


@pytest.mark.parametrize("current", [CREATED, ACTIVE])
def test_a_score_change_sent_with_a_cancellation_is_refused(current: EventState) -> None:
    with pytest.raises(ScoreNotAllowed, match="cancelled"):
        apply_changes(_at(current), {"state": CANCELLED, "score": Score(2, 0)})


def test_a_cancellation_keeps_the_score_reached_so_far() -> None:
    cancelled = apply_changes(_at(ACTIVE, Score(1, 0)), {"state": CANCELLED, "score": Score(1, 0)})
    assert (cancelled.state, cancelled.score) == (CANCELLED, Score(1, 0))


def test_score_of_a_created_event_cannot_change() -> None:
    with pytest.raises(ScoreNotAllowed):
        apply_changes(_at(CREATED), {"score": Score(1, 0)})


def test_score_of_a_created_event_cannot_change_while_it_stays_created() -> None:
    with pytest.raises(ScoreNotAllowed):
        apply_changes(_at(CREATED), {"state": CREATED, "score": Score(0, 1)})


def test_resending_the_unchanged_score_of_a_created_event_is_allowed() -> None:
    assert apply_changes(_at(CREATED), {"score": NIL_NIL}) == _at(CREATED)


def test_score_of_an_active_event_changes() -> None:
    assert apply_changes(_at(ACTIVE), {"score": Score(1, 0)}).score == Score(1, 0)


def test_score_may_go_down_while_active_for_a_disallowed_goal() -> None:
    assert apply_changes(_at(ACTIVE, Score(2, 1)), {"score": Score(1, 1)}).score == Score(1, 1)


def test_the_final_score_may_come_with_the_move_that_ends_the_match() -> None:
    updated = apply_changes(_at(ACTIVE, Score(1, 0)), {"state": FINISHED, "score": Score(3, 1)})
    assert (updated.state, updated.score) == (FINISHED, Score(3, 1))


@pytest.mark.parametrize("new", [ACTIVE, FINISHED])
def test_a_score_change_sent_with_the_move_out_of_created_is_refused(new: EventState) -> None:
    # DESIGN.md rule 4: a score is applied only to an event that is active; a created event
    # has not started, so it has no score to change, whatever move comes with it.
    with pytest.raises(ScoreNotAllowed, match="created"):
        apply_changes(_at(CREATED), {"state": new, "score": Score(3, 1)})


def test_the_unchanged_score_may_come_with_the_move_that_starts_the_match() -> None:
    assert apply_changes(_at(CREATED), {"state": ACTIVE, "score": NIL_NIL}).state == ACTIVE


def test_score_cannot_change_with_a_backward_move() -> None:
    with pytest.raises(IllegalTransition):
        apply_changes(_at(ACTIVE, Score(1, 0)), {"state": CREATED, "score": Score(2, 0)})


def test_unknown_change_is_invalid() -> None:
    with pytest.raises(InvalidEvent, match="version"):
        apply_changes(_at(CREATED), {"version": 3})


def test_other_fields_are_kept_when_one_changes() -> None:
    current = _at(ACTIVE, Score(1, 0))
    assert apply_changes(current, {"type": "futsal"}) == dataclasses.replace(current, type="futsal")


# --- apply_changes and new_event: event rules ---------------------------------------------


def test_deadline_after_event_date_is_rejected() -> None:
    with pytest.raises(InvalidEvent):
        apply_changes(_at(CREATED), {"deadline": EVENT_DATE + timedelta(seconds=1)})


def test_event_date_moved_before_the_deadline_is_rejected() -> None:
    current = make_facts(deadline=EVENT_DATE)
    with pytest.raises(InvalidEvent):
        apply_changes(current, {"event_date": EVENT_DATE - timedelta(seconds=1)})


def test_deadline_equal_to_event_date_is_accepted() -> None:
    assert apply_changes(_at(CREATED), {"deadline": EVENT_DATE}).deadline == EVENT_DATE


def test_deadline_and_event_date_moved_together_are_checked_together() -> None:
    later = EVENT_DATE + timedelta(days=7)
    updated = apply_changes(_at(CREATED), {"event_date": later, "deadline": later})
    assert (updated.event_date, updated.deadline) == (later, later)


def test_check_deadline_rejects_a_deadline_after_the_event_starts() -> None:
    check_deadline(EVENT_DATE, EVENT_DATE)
    with pytest.raises(InvalidEvent):
        check_deadline(EVENT_DATE, EVENT_DATE + timedelta(microseconds=1))


@pytest.mark.parametrize("changes", [{"team_2": "Ajax"}, {"team_1": "PSV"}])
def test_update_giving_both_sides_the_same_team_is_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent, match="differ"):
        apply_changes(_at(ACTIVE), changes)


def test_swapping_both_teams_at_once_is_accepted() -> None:
    updated = apply_changes(_at(CREATED), {"team_1": "PSV", "team_2": "Ajax"})
    assert (updated.team_1, updated.team_2) == ("PSV", "Ajax")


def test_new_event_with_the_same_team_twice_is_rejected() -> None:
    with pytest.raises(InvalidEvent):
        new_event(make_facts(team_1="Ajax", team_2="Ajax"))


def test_new_event_with_deadline_after_event_date_is_rejected() -> None:
    with pytest.raises(InvalidEvent):
        new_event(make_facts(deadline=EVENT_DATE + timedelta(minutes=1)))


@pytest.mark.parametrize(
    "overrides", [{"state": ACTIVE}, {"state": FINISHED}, {"score": Score(1, 0)}]
)
def test_new_event_must_start_created_at_nil_nil(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        new_event(make_facts(**overrides))


def test_new_event_returns_a_valid_event_unchanged() -> None:
    assert new_event(make_facts()) == make_facts()


def test_invalid_event_is_reported_as_invalid_input() -> None:
    # Request validation turns ValueError into a 422.
    assert issubclass(InvalidEvent, ValueError)
    assert issubclass(InvalidEvent, DomainError)


# --- check_teams_kept ---------------------------------------------------------------------


def _no_query() -> bool:
    raise AssertionError("asked whether the event has bets")


@pytest.mark.parametrize(
    "changes",
    [
        {"team_1": "Feyenoord"},
        {"team_2": "Feyenoord"},
        {"team_1": "PSV", "team_2": "Ajax"},  # a swap changes what every bet means
    ],
    ids=lambda changes: ",".join(changes),
)
def test_teams_cannot_change_once_the_event_has_bets(changes: dict[str, Any]) -> None:
    current = _at(CREATED)
    changed = changed_fields(current, apply_changes(current, changes))
    check_teams_kept(changed, has_bets=lambda: False)
    with pytest.raises(TeamsLocked, match="has bets"):
        check_teams_kept(changed, has_bets=lambda: True)


@pytest.mark.parametrize(
    "changes",
    [
        {"odds": Odds(team_1=Decimal("1.50"), team_2=Decimal("5.00"), draw=Decimal("4.00"))},
        {"team_1": "Ajax"},  # resending the same team changes nothing
        {"state": ACTIVE, "score": NIL_NIL},
        {"type": "futsal", "deadline": EVENT_DATE - timedelta(days=1)},
    ],
    ids=lambda changes: ",".join(changes),
)
def test_a_change_that_keeps_the_teams_never_asks_about_bets(changes: dict[str, Any]) -> None:
    current = _at(CREATED)
    check_teams_kept(changed_fields(current, apply_changes(current, changes)), has_bets=_no_query)


# --- is_open ------------------------------------------------------------------------------


def test_created_event_is_open_before_its_deadline() -> None:
    deadline = EVENT_DATE - timedelta(hours=1)
    assert is_open(CREATED, deadline, deadline - timedelta(microseconds=1))


def test_event_is_closed_at_its_deadline() -> None:
    deadline = EVENT_DATE - timedelta(hours=1)
    assert not is_open(CREATED, deadline, deadline)


@pytest.mark.parametrize("state", [ACTIVE, FINISHED, CANCELLED])
def test_started_or_cancelled_event_is_closed_even_before_its_deadline(state: EventState) -> None:
    deadline = EVENT_DATE - timedelta(hours=1)
    assert not is_open(state, deadline, deadline - timedelta(days=1))


# --- Properties ---------------------------------------------------------------------------

_small_scores = st.builds(Score, st.integers(0, 3), st.integers(0, 3))
_teams = st.sampled_from(["Ajax", "PSV", "Feyenoord"])
_moments = st.integers(-3, 3).map(lambda hours: EVENT_DATE + timedelta(hours=hours))

changes_strategy = st.fixed_dictionaries(
    {},
    optional={
        "state": event_states,
        "score": _small_scores,
        "team_1": _teams,
        "team_2": _teams,
        "type": st.sampled_from(["football", "hockey"]),
        "event_date": _moments,
        "deadline": _moments,
    },
)


def _expected_error(current: EventFacts, changes: dict[str, Any]) -> type[DomainError] | None:
    """The rules written out independently of `apply_changes`, in the order it checks them."""
    if current.state in {FINISHED, CANCELLED} and changes:
        return IllegalTransition
    new_state = changes.get("state", current.state)
    if STATE_ORDER[new_state] < STATE_ORDER[current.state]:
        return IllegalTransition
    score_changes = changes.get("score", current.score) != current.score
    if score_changes and (current.state is not ACTIVE or new_state is CANCELLED):
        return ScoreNotAllowed
    team_1 = changes.get("team_1", current.team_1)
    team_2 = changes.get("team_2", current.team_2)
    event_date = changes.get("event_date", current.event_date)
    deadline = changes.get("deadline", current.deadline)
    if team_1 == team_2 or deadline > event_date:
        return InvalidEvent
    return None


@st.composite
def reachable_events(draw: st.DrawFn) -> EventFacts:
    state = draw(event_states)
    score = NIL_NIL if state is CREATED else draw(_small_scores)
    return make_facts(state=state, score=score)


@FAST
@given(current=reachable_events(), changes=changes_strategy)
def test_apply_changes_accepts_exactly_what_the_rules_allow(
    current: EventFacts, changes: dict[str, Any]
) -> None:
    expected = _expected_error(current, changes)
    if expected is None:
        assert apply_changes(current, changes) == dataclasses.replace(current, **changes)
    else:
        with pytest.raises(expected):
            apply_changes(current, changes)


@FAST
@given(operations=st.lists(changes_strategy, min_size=1, max_size=15))
def test_any_sequence_of_changes_never_goes_backwards_or_breaks_a_rule(
    operations: list[dict[str, Any]],
) -> None:
    event = new_event(make_facts())
    for changes in operations:
        try:
            updated = apply_changes(event, changes)
        except DomainError:
            continue
        assert STATE_ORDER[updated.state] >= STATE_ORDER[event.state]
        assert event.state not in FINAL or updated == event
        if updated.score != event.score:
            assert updated.state in {ACTIVE, FINISHED}
        assert updated.team_1 != updated.team_2
        assert updated.deadline <= updated.event_date
        event = updated
    if event.state is CREATED:
        assert event.score == NIL_NIL
