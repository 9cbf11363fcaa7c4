"""Request and response schemas in `betting.models`: the HTTP contract's validation rules."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import Dialect
from sqlalchemy.dialects.postgresql.base import PGDialect

from betting import exact_json
from betting.domain import (
    MAX_MONEY,
    NIL_NIL,
    SCORE_PATTERN,
    BetState,
    EventState,
    Market,
    Odds,
    Score,
    potential_payout,
)
from betting.models import (
    BetCreate,
    BetPublic,
    BetUpdate,
    Event,
    EventCreate,
    EventPublic,
    EventUpdate,
    ScoreColumn,
)
from tests.unit.strategies import FAST, event_create_body, make_facts, scores


def _create(**overrides: Any) -> EventCreate:
    """Validate a `POST /events` body the way the line provider receives it: as JSON text."""
    return EventCreate.model_validate(exact_json.loads(json.dumps(event_create_body(**overrides))))


def _update(body: dict[str, Any]) -> EventUpdate:
    return EventUpdate.model_validate(exact_json.loads(json.dumps(body)))


# --- EventCreate --------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["event_date", "deadline"])
def test_event_create_rejects_a_timestamp_without_utc_offset(field: str) -> None:
    with pytest.raises(ValidationError, match="UTC offset"):
        _create(**{field: "2030-06-01T12:00:00"})


@pytest.mark.parametrize("extra", [{"state": "active"}, {"score": "1-0"}, {"id": "x"}, {"foo": 1}])
def test_event_create_rejects_unknown_fields(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        _create(**extra)


def test_event_create_rejects_unknown_odds_market() -> None:
    odds = {"team_1": "2.10", "team_2": "3.40", "draw": "3.00", "over": "1.90"}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        _create(odds=odds)


def test_event_create_rejects_missing_odds_market() -> None:
    with pytest.raises(ValidationError, match="draw"):
        _create(odds={"team_1": "2.10", "team_2": "3.40"})


def test_event_create_rejects_deadline_after_event_date() -> None:
    with pytest.raises(ValidationError, match="deadline must not be later than event_date"):
        _create(event_date="2030-06-01T18:00:00+00:00", deadline="2030-06-01T18:00:01+00:00")


def test_event_create_compares_deadline_and_event_date_as_instants() -> None:
    # 19:30+02:00 is 17:30Z: before the 18:00Z kick-off, although the wall clock is later.
    event = _create(event_date="2030-06-01T18:00:00Z", deadline="2030-06-01T19:30:00+02:00")
    assert event.deadline == datetime(2030, 6, 1, 17, 30, tzinfo=UTC)


def test_event_create_accepts_deadline_equal_to_event_date() -> None:
    event = _create(event_date="2030-06-01T18:00:00Z", deadline="2030-06-01T18:00:00Z")
    assert event.deadline == event.event_date


def test_event_create_deadline_defaults_to_event_date() -> None:
    body = event_create_body(event_date="2030-06-01T18:00:00+00:00")
    del body["deadline"]
    event = EventCreate.model_validate_json(json.dumps(body))
    assert event.deadline == datetime(2030, 6, 1, 18, 0, tzinfo=UTC)
    assert event.to_facts().deadline == event.event_date
    assert event.model_dump(mode="json")["deadline"] == event.model_dump(mode="json")["event_date"]


def test_event_create_converts_timestamps_to_utc() -> None:
    event = _create(event_date="2030-06-01T20:00:00+02:00", deadline="2030-06-01T13:00:00-04:00")
    assert event.event_date.utcoffset() == timedelta(0)
    assert event.deadline is not None
    assert event.deadline.utcoffset() == timedelta(0)
    assert event.event_date == datetime(2030, 6, 1, 18, 0, tzinfo=UTC)
    assert event.deadline == datetime(2030, 6, 1, 17, 0, tzinfo=UTC)
    dumped = event.model_dump(mode="json")
    assert datetime.fromisoformat(dumped["event_date"]).utcoffset() == timedelta(0)
    assert datetime.fromisoformat(dumped["event_date"]) == event.event_date


def test_event_create_accepts_odds_as_strings_or_numbers_and_sends_two_place_strings() -> None:
    event = _create(odds={"team_1": "1.5", "team_2": 2, "draw": 3.25})
    assert event.model_dump(mode="json")["odds"] == {
        "team_1": "1.50",
        "team_2": "2.00",
        "draw": "3.25",
    }
    assert json.loads(event.model_dump_json())["odds"]["team_1"] == "1.50"
    assert event.to_facts().odds == Odds(Decimal("1.50"), Decimal("2.00"), Decimal("3.25"))


def test_event_create_keeps_decimal_odds_exact_from_json_numbers() -> None:
    # 0.1 and 1.1 have no exact binary float; they must still be exactly 0.10 and 1.10.
    event = _create(odds={"team_1": 0.1, "team_2": 1.1, "draw": 2.2})
    assert event.to_facts().odds == Odds(Decimal("0.10"), Decimal("1.10"), Decimal("2.20"))


@pytest.mark.parametrize("bad", ["1.005", 1.005, 0, "0.00", -1.5, "-2", "NaN", "Infinity", "abc"])
def test_event_create_rejects_odds_that_are_not_positive_two_place_decimals(bad: Any) -> None:
    with pytest.raises(ValidationError):
        _create(odds={"team_1": bad, "team_2": "3.40", "draw": "3.00"})


def test_event_create_rejects_odds_above_the_maximum() -> None:
    with pytest.raises(ValidationError, match="exceed"):
        _create(odds={"team_1": str(MAX_MONEY + 1), "team_2": "3.40", "draw": "3.00"})


def test_event_create_rejects_the_same_team_on_both_sides() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        _create(team_1="Ajax", team_2="Ajax")


@pytest.mark.parametrize("field", ["type", "team_1", "team_2"])
@pytest.mark.parametrize("blank", ["", "   "])
def test_event_create_rejects_blank_names(field: str, blank: str) -> None:
    with pytest.raises(ValidationError):
        _create(**{field: blank})


def test_accepted_event_starts_created_at_nil_nil_without_a_version() -> None:
    event_id = uuid.uuid4()
    at = datetime(2030, 1, 1, tzinfo=UTC)
    public = EventPublic.accepted(event_id, _create(), at)
    dumped = public.model_dump(mode="json")
    assert (public.id, public.state, public.score, public.version) == (
        event_id,
        EventState.CREATED,
        NIL_NIL,
        None,
    )
    assert dumped["score"] == "0-0"
    assert dumped["odds"] == {"team_1": "2.10", "team_2": "3.40", "draw": "3.00"}


@FAST
@given(state=st.sampled_from(list(EventState)), score=scores)
def test_a_stored_event_is_shown_as_its_facts_say(state: EventState, score: Score) -> None:
    facts = make_facts(state=state, score=score)
    event_id, at = uuid.uuid4(), datetime(2030, 1, 1, tzinfo=UTC)
    shown = Event.from_facts(event_id, facts, version=7, at=at).to_public()
    assert shown == EventPublic.from_facts(event_id, facts, version=7, created_at=at, updated_at=at)
    assert (shown.state, shown.score, shown.odds.to_domain()) == (state, score, facts.odds)


def test_the_odds_an_answer_shows_can_be_sent_back_unchanged() -> None:
    shown = EventPublic.accepted(uuid.uuid4(), _create(), datetime(2030, 1, 1, tzinfo=UTC))
    odds = shown.model_dump(mode="json")["odds"]
    assert _update({"odds": odds}).to_changes() == {"odds": shown.odds.to_domain()}


@pytest.mark.parametrize("extra", [{"over": "1.90"}, {"void": True}])
def test_event_update_rejects_unknown_odds_fields(extra: dict[str, Any]) -> None:
    odds = {"team_1": "2.10", "team_2": "3.40", "draw": "3.00", **extra}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        _update({"odds": odds})


# --- EventUpdate --------------------------------------------------------------------------


def test_event_update_rejects_an_empty_body() -> None:
    with pytest.raises(ValidationError, match="at least one field"):
        _update({})


@pytest.mark.parametrize(
    "field", ["type", "team_1", "team_2", "event_date", "deadline", "odds", "state", "score"]
)
def test_event_update_rejects_an_explicit_null(field: str) -> None:
    with pytest.raises(ValidationError, match=f"fields cannot be null: {field}"):
        _update({field: None})


def test_event_update_rejects_a_null_next_to_a_real_change() -> None:
    with pytest.raises(ValidationError, match="cannot be null: type"):
        _update({"score": "1-0", "type": None})


@pytest.mark.parametrize("field", ["id", "version", "created_at", "foo"])
def test_event_update_rejects_unknown_fields(field: str) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        _update({"score": "1-0", field: "x"})


@pytest.mark.parametrize("score", ["01-0", "1:0", "1000-0", "-1-0", "1-0 "])
def test_event_update_rejects_malformed_score(score: str) -> None:
    with pytest.raises(ValidationError, match="score must look like"):
        _update({"score": score})


def test_event_update_rejects_unknown_state() -> None:
    with pytest.raises(ValidationError):
        _update({"state": "paused"})


def test_event_update_rejects_naive_timestamp() -> None:
    with pytest.raises(ValidationError, match="UTC offset"):
        _update({"deadline": "2030-06-01T12:00:00"})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"score": "2-1"}, {"score": Score(2, 1)}),
        ({"state": "active"}, {"state": EventState.ACTIVE}),
        (
            {"odds": {"team_1": 1.5, "team_2": "2", "draw": "3.10"}},
            {"odds": Odds(Decimal("1.50"), Decimal("2.00"), Decimal("3.10"))},
        ),
        (
            {"deadline": "2030-06-01T19:00:00+02:00"},
            {"deadline": datetime(2030, 6, 1, 17, 0, tzinfo=UTC)},
        ),
        ({"type": "hockey", "team_1": "Ajax"}, {"type": "hockey", "team_1": "Ajax"}),
    ],
)
def test_event_update_changes_only_the_fields_sent_in_domain_types(
    body: dict[str, Any], expected: dict[str, Any]
) -> None:
    changes = _update(body).to_changes()
    assert changes == expected
    assert [type(value) for value in changes.values()] == [
        type(value) for value in expected.values()
    ]


def test_event_update_to_changes_gives_the_state_as_an_enum_member() -> None:
    # apply_changes compares states by identity.
    assert _update({"state": "finished"}).to_changes()["state"] is EventState.FINISHED


# --- Score: text on the wire and in Postgres, a `Score` inside ----------------------------


@FAST
@given(score=scores)
def test_a_score_arrives_as_a_score_and_leaves_as_its_text(score: Score) -> None:
    update = _update({"score": str(score)})
    assert isinstance(update.score, Score)
    assert update.score == score
    assert json.loads(update.model_dump_json(exclude_unset=True)) == {"score": str(score)}


@pytest.mark.parametrize("value", [21, 2.1, True, ["2-1"], {"team_1": 2, "team_2": 1}])
def test_a_score_must_be_sent_as_text(value: Any) -> None:
    with pytest.raises(ValidationError, match="Input should be a valid string"):
        _update({"score": value})


def test_a_score_value_is_taken_as_it_is_inside_the_program() -> None:
    score = Score(3, 1)
    assert EventUpdate(score=score).score is score


def test_the_json_schema_gives_the_score_as_text_with_its_pattern() -> None:
    update = EventUpdate.model_json_schema()["properties"]["score"]
    assert (update["type"], update["pattern"]) == ("string", SCORE_PATTERN)
    public = EventPublic.model_json_schema(mode="serialization")["properties"]["score"]
    assert (public["type"], public["pattern"]) == ("string", SCORE_PATTERN)


@FAST
@given(text=st.one_of(st.text(max_size=9), scores.map(str)))
def test_the_schema_pattern_admits_exactly_the_scores_the_server_accepts(text: str) -> None:
    try:
        _update({"score": text})
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert (re.fullmatch(SCORE_PATTERN, text) is not None) == accepted


POSTGRES: Dialect = PGDialect()  # type: ignore[no-untyped-call]


def test_the_score_column_writes_text_and_reads_a_score() -> None:
    column = ScoreColumn()
    assert column.process_bind_param(Score(2, 1), POSTGRES) == "2-1"
    assert column.process_result_value("2-1", POSTGRES) == Score(2, 1)


def test_the_score_column_refuses_anything_but_a_score() -> None:
    with pytest.raises(TypeError, match="takes a Score"):
        ScoreColumn().process_bind_param("2-1", POSTGRES)  # type: ignore[arg-type]


# --- Bets ---------------------------------------------------------------------------------


def _bet_create(**overrides: Any) -> BetCreate:
    body: dict[str, Any] = {"event_id": str(uuid.uuid4()), "market": "draw", "amount": "10"}
    body.update(overrides)
    return BetCreate.model_validate(exact_json.loads(json.dumps(body)))


def test_bet_create_accepts_amount_and_sends_it_with_two_places() -> None:
    bet = _bet_create(amount=10)
    assert bet.amount == Decimal("10.00")
    assert bet.market is Market.DRAW
    assert bet.model_dump(mode="json")["amount"] == "10.00"


@pytest.mark.parametrize("amount", [0, "0", "0.00", "1.001", 1.001, "-5", -0.01, "NaN"])
def test_bet_create_rejects_amount_that_is_not_a_positive_two_place_decimal(amount: Any) -> None:
    with pytest.raises(ValidationError, match="amount"):
        _bet_create(amount=amount)


def test_bet_create_rejects_an_unknown_market() -> None:
    with pytest.raises(ValidationError, match="market"):
        _bet_create(market="over_2_5")


@pytest.mark.parametrize("field", ["user_id", "state", "potential_payout", "payout"])
def test_bet_create_rejects_fields_the_server_decides(field: str) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        _bet_create(**{field: "x"})


def test_bet_create_takes_the_odds_the_player_saw_optionally() -> None:
    assert _bet_create().odds is None
    assert _bet_create(odds="2.1").odds == Decimal("2.10")
    assert _bet_create(odds=3).model_dump(mode="json")["odds"] == "3.00"


@pytest.mark.parametrize("odds", [0, "1.001", -2, "x"])
def test_bet_create_rejects_odds_that_are_not_money(odds: Any) -> None:
    with pytest.raises(ValidationError, match="odds"):
        _bet_create(odds=odds)


@pytest.mark.parametrize(("field", "value"), [("market", "team_1"), ("state", "win")])
def test_bet_update_rejects_market_and_state(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        BetUpdate.model_validate(exact_json.loads(json.dumps({"amount": "5.00", field: value})))


def test_bet_update_accepts_a_new_amount() -> None:
    assert BetUpdate.model_validate(exact_json.loads('{"amount": 7.5}')).amount == Decimal("7.50")


@pytest.mark.parametrize("amount", [0, "1.001", -1])
def test_bet_update_rejects_invalid_amount(amount: Any) -> None:
    with pytest.raises(ValidationError):
        BetUpdate.model_validate(exact_json.loads(json.dumps({"amount": amount})))


def _bet_public(
    amount: str, odds: str, state: BetState = BetState.NONE, payout: Decimal | None = None
) -> BetPublic:
    moment = datetime(2030, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    return BetPublic(
        id=uuid.uuid4(),
        user_id="player-1",
        event_id=uuid.uuid4(),
        market=Market.TEAM_1,
        amount=Decimal(amount),
        odds=Decimal(odds),
        potential_payout=potential_payout(Decimal(amount), Decimal(odds)),
        payout=payout,
        state=state,
        date_created=moment,
        updated_at=moment,
    )


def test_bet_public_sends_money_as_two_place_strings_and_times_in_utc() -> None:
    dumped = _bet_public("10", "1.85").model_dump(mode="json")
    assert (dumped["amount"], dumped["odds"], dumped["potential_payout"]) == (
        "10.00",
        "1.85",
        "18.50",
    )
    assert datetime.fromisoformat(dumped["date_created"]).utcoffset() == timedelta(0)


def test_bet_public_shows_a_payout_above_the_largest_stake() -> None:
    # amount and odds are both valid inputs; their product fits potential_payout numeric(24, 2).
    bet = _bet_public(str(MAX_MONEY), "2.00")
    assert bet.model_dump(mode="json")["potential_payout"] == "19999999999.98"


@pytest.mark.parametrize(
    ("state", "payout", "shown"),
    [
        (BetState.WINNING, None, None),
        (BetState.WIN, Decimal("18.5"), "18.50"),
        (BetState.LOSE, Decimal(0), "0.00"),
        (BetState.VOID, Decimal("10.00"), "10.00"),
    ],
)
def test_bet_public_shows_the_payout_as_null_or_money(
    state: BetState, payout: Decimal | None, shown: str | None
) -> None:
    assert _bet_public("10", "1.85", state, payout).model_dump(mode="json")["payout"] == shown


def test_bet_public_shows_a_payout_rounded_down_to_zero() -> None:
    # 0.01 x 0.50 = 0.005, rounded down to 0.00; both inputs are valid.
    bet = _bet_public("0.01", "0.50")
    assert bet.model_dump(mode="json")["potential_payout"] == "0.00"


@pytest.mark.parametrize("stamp", [1700000000, 1700000000.5])
def test_event_create_rejects_a_numeric_timestamp(stamp: float) -> None:
    with pytest.raises(ValidationError):
        EventCreate.model_validate({**event_create_body(), "event_date": stamp})


def test_team_names_are_trimmed_so_padding_does_not_make_a_new_team() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        EventCreate.model_validate({**event_create_body(), "team_1": "Ajax", "team_2": " Ajax "})
