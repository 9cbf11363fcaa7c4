"""Topic messages in `betting.messages`: what producers encode is what consumers decode."""

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from betting.domain import BetState, EventState, Score
from betting.messages import (
    BetScored,
    BetUpdate,
    EventCreated,
    EventUpdated,
    decode_bet_scored,
    decode_event,
    encode,
    encode_bet_scored,
)
from betting.models import EventCreate, EventUpdate
from tests.unit.strategies import FAST, event_create_body

SENT_AT = datetime(2030, 6, 1, 17, 59, 30, 123456, tzinfo=UTC)

# One valid JSON value per EventUpdate field, as a client would send it.
UPDATE_VALUES: dict[str, Any] = {
    "type": "hockey",
    "team_1": "Feyenoord",
    "team_2": "AZ",
    "event_date": "2030-06-02T18:00:00+00:00",
    "deadline": "2030-06-02T17:00:00+02:00",
    "odds": {"team_1": Decimal("1.5"), "team_2": "2.25", "draw": "3"},  # 1.5: a JSON number
    "state": "active",
    "score": "2-1",
}


def _created(**overrides: Any) -> EventCreated:
    return EventCreated(
        event_id=uuid.uuid4(),
        sent_at=SENT_AT,
        event=EventCreate.model_validate(event_create_body(**overrides)),
    )


def _updated(changes: dict[str, Any]) -> EventUpdated:
    return EventUpdated(
        event_id=uuid.uuid4(), sent_at=SENT_AT, changes=EventUpdate.model_validate(changes)
    )


def _nulls(value: Any) -> list[Any]:
    """Every null anywhere in a decoded JSON document."""
    if value is None:
        return [None]
    if isinstance(value, dict):
        return [null for item in value.values() for null in _nulls(item)]
    if isinstance(value, list):
        return [null for item in value for null in _nulls(item)]
    return []


# --- EventCreated -------------------------------------------------------------------------


def test_event_created_round_trips() -> None:
    message = _created()
    decoded = decode_event(encode(message))
    assert isinstance(decoded, EventCreated)
    assert decoded == message
    assert decoded.event.to_facts() == message.event.to_facts()


def test_event_created_without_deadline_round_trips_with_the_default_deadline() -> None:
    body = event_create_body()
    del body["deadline"]
    message = EventCreated(
        event_id=uuid.uuid4(), sent_at=SENT_AT, event=EventCreate.model_validate(body)
    )
    decoded = decode_event(encode(message))
    assert isinstance(decoded, EventCreated)
    assert decoded.event.deadline == decoded.event.event_date == message.event.event_date


def test_event_created_is_sent_with_the_kind_money_strings_and_utc_times() -> None:
    message = EventCreated(
        event_id=uuid.uuid4(),
        sent_at=datetime(2030, 6, 1, 20, 0, tzinfo=timezone(timedelta(hours=2))),
        event=EventCreate.model_validate(
            event_create_body(odds={"team_1": 2, "team_2": "3.4", "draw": 3})
        ),
    )
    document = json.loads(encode(message))
    assert document["kind"] == "event_created"
    assert document["event_id"] == str(message.event_id)
    assert document["event"]["odds"] == {"team_1": "2.00", "team_2": "3.40", "draw": "3.00"}
    sent_at = datetime.fromisoformat(document["sent_at"])
    assert sent_at.utcoffset() == timedelta(0)
    assert sent_at == datetime(2030, 6, 1, 18, 0, tzinfo=UTC)


# --- EventUpdated -------------------------------------------------------------------------


@pytest.mark.parametrize("field", list(UPDATE_VALUES))
def test_event_updated_with_one_change_round_trips(field: str) -> None:
    message = _updated({field: UPDATE_VALUES[field]})
    decoded = decode_event(encode(message))
    assert isinstance(decoded, EventUpdated)
    assert decoded == message
    assert decoded.changes.model_fields_set == {field}
    assert decoded.changes.to_changes() == message.changes.to_changes()


@FAST
@given(fields=st.sets(st.sampled_from(sorted(UPDATE_VALUES)), min_size=1))
def test_event_updated_serialises_only_the_changed_fields(fields: set[str]) -> None:
    message = _updated({field: UPDATE_VALUES[field] for field in fields})
    document = json.loads(encode(message))
    assert set(document["changes"]) == fields
    assert _nulls(document) == []
    decoded = decode_event(encode(message))
    assert isinstance(decoded, EventUpdated)
    assert decoded.changes.model_fields_set == fields
    assert decoded.changes.to_changes() == message.changes.to_changes()


def test_event_updated_sends_the_score_and_state_as_text() -> None:
    document = json.loads(encode(_updated({"state": "finished", "score": "3-2"})))
    assert document["kind"] == "event_updated"
    assert document["changes"] == {"state": "finished", "score": "3-2"}


def test_decoded_event_update_gives_domain_changes() -> None:
    decoded = decode_event(encode(_updated({"state": "finished", "score": "3-2"})))
    assert isinstance(decoded, EventUpdated)
    assert decoded.changes.to_changes() == {"state": EventState.FINISHED, "score": Score(3, 2)}


# --- BetScored ----------------------------------------------------------------------------


def _as_update(message: BetScored) -> BetUpdate:
    return BetUpdate(
        str(message.bet_id), str(message.event_id), message.state.value, message.version
    )


@pytest.mark.parametrize("state", list(BetState))
def test_bet_scored_round_trips(state: BetState) -> None:
    message = BetScored(bet_id=uuid.uuid4(), event_id=uuid.uuid4(), state=state, version=42)
    assert decode_bet_scored(encode(message)) == _as_update(message)
    assert json.loads(encode(message))["state"] == state.value


@FAST
@given(
    bet_id=st.uuids(),
    event_id=st.uuids(),
    state=st.sampled_from(BetState),
    version=st.integers(min_value=0, max_value=2**63 - 1),
)
def test_the_scorers_encoding_is_a_valid_bet_scored(
    bet_id: uuid.UUID, event_id: uuid.UUID, state: BetState, version: int
) -> None:
    raw = encode_bet_scored(str(bet_id), str(event_id), state, version)
    message = BetScored.model_validate_json(raw)
    assert message == BetScored(bet_id=bet_id, event_id=event_id, state=state, version=version)
    assert decode_bet_scored(raw) == _as_update(message)


# What the model refuses, the bet writer's decoder refuses (as ValueError, for the dead letters).
INVALID_BET_SCORED: list[dict[str, Any]] = [
    {"bet_id": "not-a-uuid"},
    {"bet_id": 7},
    {"event_id": None},
    {"state": "won"},
    {"state": ["win"]},
    {"version": 1.5},
    {"version": -1},
    {"version": 2**63},  # past Postgres's bigint: the writer's statement would fail on it
    {"kind": "event_created"},
    {"extra": 1},
]


@pytest.mark.parametrize("separators", [(", ", ": "), (",", ":")], ids=["spaced", "compact"])
@pytest.mark.parametrize("change", INVALID_BET_SCORED)
def test_decode_bet_scored_refuses_what_the_model_refuses(
    change: dict[str, Any], separators: tuple[str, str]
) -> None:
    document = json.loads(
        encode(BetScored(bet_id=uuid.uuid4(), event_id=uuid.uuid4(), state=BetState.WIN, version=1))
    )
    # Compact is the scorer's own spelling: the decoder's first fast path reads it.
    raw = json.dumps(document | change, separators=separators).encode()
    with pytest.raises(ValueError):
        BetScored.model_validate_json(raw)
    with pytest.raises(ValueError):
        decode_bet_scored(raw)


_ID_SPELLINGS = st.uuids().flatmap(
    lambda u: st.sampled_from([str(u), str(u).upper(), u.hex, f"{{{u}}}", str(u)[:-1]])
)
_FIELD_VALUES = {
    "kind": st.sampled_from(["bet_scored", "event_created", 1]),
    "bet_id": _ID_SPELLINGS | st.integers(),
    "event_id": _ID_SPELLINGS | st.none(),
    "state": st.sampled_from([*(s.value for s in BetState), "won", "WIN"]),
    "version": st.integers(-2, 2**63) | st.booleans() | st.floats(allow_nan=False) | st.text(),
    "extra": st.integers(),
}


@FAST
@given(
    st.fixed_dictionaries({}, optional={name: values for name, values in _FIELD_VALUES.items()}),
    # Compact, in the scorer's field order, is its own spelling (`encode_bet_scored`).
    st.sampled_from([(", ", ": "), (",", ":")]),
)
def test_decode_bet_scored_answers_as_the_model_does(
    document: dict[str, Any], separators: tuple[str, str]
) -> None:
    """The decoder's fast paths for the scorer's own spelling never change an answer."""
    raw = json.dumps(document, separators=separators).encode()
    try:
        expected: BetUpdate | None = _as_update(BetScored.model_validate_json(raw))
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            decode_bet_scored(raw)
    else:
        assert decode_bet_scored(raw) == expected


def test_decode_bet_scored_makes_another_spelling_of_a_bet_id_canonical() -> None:
    bet_id, event_id = uuid.uuid4(), uuid.uuid4()
    raw = encode_bet_scored(str(bet_id).upper(), event_id.hex, BetState.WIN, 1)
    assert decode_bet_scored(raw) == BetUpdate(str(bet_id), str(event_id), "win", 1)


def test_decode_bet_scored_rejects_a_missing_field() -> None:
    document = json.loads(
        encode(BetScored(bet_id=uuid.uuid4(), event_id=uuid.uuid4(), state=BetState.WIN, version=1))
    )
    del document["version"]
    with pytest.raises(ValueError, match="version"):
        decode_bet_scored(json.dumps(document).encode())


def test_bet_scored_rejects_a_negative_version() -> None:
    raw = json.dumps(
        {
            "kind": "bet_scored",
            "bet_id": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()),
            "state": "win",
            "version": -1,
        }
    ).encode()
    with pytest.raises(ValueError, match="version"):
        decode_bet_scored(raw)


# --- Garbage ------------------------------------------------------------------------------

GARBAGE = [b"", b"\xff\xfe\x00", b"not json", b"null", b"[]", b"{}", b'{"kind": 1}', b"42"]


@pytest.mark.parametrize("raw", GARBAGE)
def test_decode_event_rejects_garbage_bytes(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode_event(raw)


@pytest.mark.parametrize("raw", GARBAGE)
def test_decode_bet_scored_rejects_garbage_bytes(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode_bet_scored(raw)


def test_decode_event_rejects_a_missing_value() -> None:
    with pytest.raises(ValueError, match="empty message"):
        decode_event(None)


def test_decode_bet_scored_rejects_a_missing_value() -> None:
    with pytest.raises(ValueError, match="empty message"):
        decode_bet_scored(None)


def test_decode_event_rejects_a_bet_scored_message() -> None:
    raw = encode(
        BetScored(bet_id=uuid.uuid4(), event_id=uuid.uuid4(), state=BetState.WIN, version=0)
    )
    with pytest.raises(ValueError):
        decode_event(raw)


@pytest.mark.parametrize("message", [_created(), _updated({"score": "1-0"})])
def test_decode_bet_scored_rejects_an_event_message(message: EventCreated | EventUpdated) -> None:
    with pytest.raises(ValueError):
        decode_bet_scored(encode(message))


@pytest.mark.parametrize("kind", ["event_deleted", "EVENT_CREATED", "bet_scored", ""])
def test_decode_event_rejects_an_unknown_kind(kind: str) -> None:
    document = json.loads(encode(_created()))
    document["kind"] = kind
    with pytest.raises(ValueError):
        decode_event(json.dumps(document).encode())


def test_decode_event_rejects_an_event_created_with_the_update_kind() -> None:
    document = json.loads(encode(_created()))
    document["kind"] = "event_updated"
    with pytest.raises(ValueError):
        decode_event(json.dumps(document).encode())


def test_decode_event_rejects_an_event_that_breaks_the_rules() -> None:
    document = json.loads(encode(_created()))
    document["event"]["team_2"] = document["event"]["team_1"]
    with pytest.raises(ValueError, match="must differ"):
        decode_event(json.dumps(document).encode())


def test_decode_event_rejects_an_update_with_an_explicit_null() -> None:
    document = json.loads(encode(_updated({"score": "1-0"})))
    document["changes"]["state"] = None
    with pytest.raises(ValueError, match="cannot be null"):
        decode_event(json.dumps(document).encode())


def test_decode_event_rejects_an_unknown_top_level_field() -> None:
    document = json.loads(encode(_updated({"score": "1-0"})))
    document["version"] = 7
    with pytest.raises(ValueError, match="Extra inputs"):
        decode_event(json.dumps(document).encode())
