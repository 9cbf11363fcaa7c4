"""What travels on the topics: one schema per message, shared by producers and consumers."""

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


def decode_bet_scored(raw: bytes | None) -> BetUpdate:
    """Parse a `bets.state` value as `BetScored`; raises `ValueError` with the reason.

    The model validates (in pydantic-core: as fast per record as `json.loads` plus hand
    checks, measured) and the result is plain values, which bind to Postgres arrays as text.
    """
    if raw is None:
        raise ValueError("empty message")
    message = BetScored.model_validate_json(raw)
    return BetUpdate(
        str(message.bet_id), str(message.event_id), message.state.value, message.version
    )
