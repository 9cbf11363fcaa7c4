"""What travels on the topics: one schema per message, shared by producers and consumers."""

import json
import re
import uuid
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_serializer

from betting.domain import BetState
from betting.models import EventCreate, EventUpdate, UtcDatetime


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventCreated(Message):
    kind: Literal["event_created"] = "event_created"
    event_id: uuid.UUID
    sent_at: UtcDatetime
    event: EventCreate


class EventUpdated(Message):
    kind: Literal["event_updated"] = "event_updated"
    event_id: uuid.UUID
    sent_at: UtcDatetime
    changes: EventUpdate

    @field_serializer("changes")
    def _only_what_changes(self, changes: EventUpdate) -> dict[str, Any]:
        return changes.model_dump(mode="json", exclude_unset=True)


EventMessage = Annotated[EventCreated | EventUpdated, Field(discriminator="kind")]
event_message = TypeAdapter[EventCreated | EventUpdated](EventMessage)


MAX_VERSION = 2**63 - 1
"""The largest log position a version column (bigint) holds."""


class BetScored(Message):
    """A bet's new state, computed from the event's state and score at `version`."""

    kind: Literal["bet_scored"] = "bet_scored"
    bet_id: uuid.UUID
    event_id: uuid.UUID
    state: BetState
    # A Postgres bigint: a larger one could never be stored, so it is a bad message.
    version: int = Field(ge=0, le=MAX_VERSION)


# `BetScored` as the scorer writes one per bet, without building the model: it is the hot loop
# of a settlement. tests/unit/test_messages.py proves the output validates as `BetScored`.
_BET_SCORED_JSON = '{"kind":"bet_scored","bet_id":"%s","event_id":"%s","state":"%s","version":%d}'


def encode_bet_scored(bet_id: str, event_id: str, state: BetState, version: int) -> bytes:
    """One `BetScored` value; `bet_id` and `event_id` are canonical UUID text."""
    return (_BET_SCORED_JSON % (bet_id, event_id, state.value, version)).encode()


class BetUpdate(NamedTuple):
    """A decoded `BetScored`, as plain values (canonical UUID text, state value)."""

    bet_id: str
    event_id: str
    state: str
    version: int


def encode(message: Message) -> bytes:
    return message.model_dump_json().encode()


def decode_event(raw: bytes | None) -> EventCreated | EventUpdated:
    """Parse an `events.taxonomy` value; raises `ValueError` with the reason."""
    if raw is None:
        raise ValueError("empty message")
    return event_message.validate_json(raw)


# What the scorer writes (`encode_bet_scored`): ids as canonical UUID text.
_UUID_TEXT = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_CANONICAL_UUID = re.compile(_UUID_TEXT)
_BET_STATES = frozenset(state.value for state in BetState)
# A record spelt exactly as `encode_bet_scored` spells it: its fields are read by one match.
_SCORER_SPELLING = re.compile(
    (
        _BET_SCORED_JSON.replace("{", r"\{")
        .replace("}", r"\}")
        .replace('"%s","event_id"', f'"({_UUID_TEXT})","event_id"')
        .replace('"%s","state"', f'"({_UUID_TEXT})","state"')
        .replace('"state":"%s"', f'"state":"({"|".join(sorted(_BET_STATES))})"')
        .replace("%d", "(0|[1-9][0-9]{0,18})")
    ).encode()
)


def decode_bet_scored(raw: bytes | None) -> BetUpdate:
    """Parse a `bets.state` value as `BetScored`; raises `ValueError` with the reason.

    The bet writer's hot loop. A record spelt exactly as the scorer writes it is read by one
    regular expression (ids as canonical UUID text, a known state, an integer version in a
    bigint's range); the same fields in another order or spacing by `json.loads` and the same
    checks. Both accept a subset of what the model accepts and give the same values, the first
    at a fifth of the model's cost, the second at less than half (the model builds two `UUID`
    objects only for them to be turned back into text). Anything else goes through the model,
    which accepts it (another spelling of a UUID) or says why not. tests/unit/test_messages.py
    holds the three to the same answers.
    """
    if raw is None:
        raise ValueError("empty message")
    spelt = _SCORER_SPELLING.fullmatch(raw)
    if spelt is not None and int(spelt[4]) <= MAX_VERSION:
        bet_id, event_id, state, version = spelt.groups()
        return BetUpdate(bet_id.decode(), event_id.decode(), state.decode(), int(version))
    try:
        fields = json.loads(raw.decode())  # from text: no encoding to detect
    except ValueError:
        fields = None
    if type(fields) is dict and len(fields) == 5 and fields.get("kind") == "bet_scored":
        bet_id, event_id = fields.get("bet_id"), fields.get("event_id")
        state, version = fields.get("state"), fields.get("version")
        if (
            type(bet_id) is str
            and type(event_id) is str
            and _CANONICAL_UUID.fullmatch(bet_id)
            and _CANONICAL_UUID.fullmatch(event_id)
            and type(state) is str
            and state in _BET_STATES
            and type(version) is int
            and 0 <= version <= MAX_VERSION
        ):
            return BetUpdate(bet_id, event_id, state, version)
    message = BetScored.model_validate_json(raw)
    return BetUpdate(
        str(message.bet_id), str(message.event_id), message.state.value, message.version
    )
