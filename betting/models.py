"""The SQLModel tables and the API schemas, one family per entity."""

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic import (
    Field as PydanticField,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Identity,
    Index,
    Numeric,
    SmallInteger,
    String,
    Uuid,
    func,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from betting.domain import (
    MAX_MONEY,
    SCORE_PATTERN,
    BetState,
    EventFacts,
    EventState,
    Market,
    Odds,
    Score,
    check_event,
    parse_money,
)
from betting.exact_json import ExponentNumber

WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""What `str.strip()` removes, as a regex character class that JSON Schema validators read alike."""
TEXT_PATTERN = f"^[^\\x00]*[^\\x00{WHITESPACE}][^\\x00]*$"
"""A name or type: something besides whitespace, and no NUL (Postgres text cannot hold one)."""


def _reject_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    # Postgres text cannot hold NUL: such a name would be a poison message for the writer.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _text(longest: int) -> WithJsonSchema:
    schema = {"type": "string", "minLength": 1, "maxLength": longest, "pattern": TEXT_PATTERN}
    return WithJsonSchema(schema)


MONEY_PATTERN = r"^(0[.](0[1-9]|[1-9][0-9]?)0*|[1-9][0-9]{0,9}([.][0-9]{1,2}0*)?)$"
"""Money as text, exactly what the server accepts: plain decimal notation (no sign, exponent,
underscore, space or leading zero), a whole number of cents from 0.01 to `MAX_MONEY`."""
MONEY_OUT_PATTERN = r"^(0|[1-9][0-9]*)[.][0-9]{2}$"
"""Money as the server sends it: two places, always."""
_PLAIN_DECIMAL = re.compile(r"(0|[1-9][0-9]*)([.][0-9]+)?")


def _money(value: object) -> Decimal:
    if isinstance(value, str):
        if not _PLAIN_DECIMAL.fullmatch(value):
            raise PydanticCustomError(
                "money_notation",
                "must be a decimal in plain notation, like 1.85: no sign, exponent, spaces, "
                "underscores or leading zeros",
            )
        value = Decimal(value)
    elif isinstance(value, ExponentNumber):
        raise PydanticCustomError(
            "money_notation",
            "must be a number in plain notation, like 1.85, not {text}",
            {"text": value.text},
        )
    elif isinstance(value, int) and not isinstance(value, bool):
        value = Decimal(value)
    elif not isinstance(value, Decimal):
        # A float has already lost the digits the client wrote; `exact_json` never makes one.
        raise PydanticCustomError("money_type", "must be a decimal, as a JSON string or number")
    return parse_money(value)


def _two_places(value: Decimal) -> str:
    return f"{value:.2f}"


_MONEY_OUT = WithJsonSchema({"type": "string", "pattern": MONEY_OUT_PATTERN}, mode="serialization")

Money = Annotated[
    Decimal,
    BeforeValidator(_money),
    PlainSerializer(_two_places, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": MONEY_PATTERN},
                {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": float(MAX_MONEY),
                    "multipleOf": 0.01,
                },
            ]
        },
        mode="validation",
    ),
    _MONEY_OUT,
]
"""Money and odds: read exactly from a JSON string or number (see `betting.exact_json`),
always sent as `"10.00"`."""

Payout = Annotated[Decimal, PlainSerializer(_two_places, return_type=str), _MONEY_OUT]
"""A computed amount (amount × odds, rounded down): may be zero or above `MAX_MONEY`."""

BALANCE_OUT_PATTERN = r"^-?(0|[1-9][0-9]*)[.][0-9]{2}$"
"""A result as the server sends it: two places, a minus sign for a loss."""

Balance = Annotated[
    Decimal,
    PlainSerializer(_two_places, return_type=str),
    WithJsonSchema({"type": "string", "pattern": BALANCE_OUT_PATTERN}, mode="serialization"),
]
"""What the operator keeps on an event (the book): negative when it loses money."""


_YEAR = "([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"  # 0001-9999
TIMESTAMP_PATTERN = (
    f"^{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    "T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,6})?"
    "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
"""A timestamp as text: RFC 3339 (ISO 8601) with a UTC offset, to the microsecond.

What JSON Schema's `date-time` format admits, less what Python's datetime cannot hold (year 0,
leap seconds, more than six fractional digits). Month lengths and the calendar's edges are
checked when the text is read."""
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)


def _utc_timestamp(value: object) -> datetime:
    if isinstance(value, str) and _TIMESTAMP_RE.fullmatch(value):
        value = datetime.fromisoformat(value)  # a ValueError (say, 30 February) is invalid input
    elif not isinstance(value, datetime):
        # Not a bare number, nor Unix time as text: pydantic would read both as seconds.
        raise PydanticCustomError(
            "timestamp_format",
            "must be an ISO 8601 timestamp with a UTC offset, like 2030-05-01T18:45:00+02:00",
        )
    if value.utcoffset() is None:
        raise PydanticCustomError("timestamp_offset", "must carry a UTC offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "timestamp_range", "must fall within the years 1 to 9999 once converted to UTC"
        ) from None


UtcDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_utc_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
"""A timestamp that must carry a UTC offset (`TIMESTAMP_PATTERN`); kept and sent in UTC."""


def _score(value: object) -> Score:
    if isinstance(value, Score):
        return value
    if not isinstance(value, str):
        # The error a plain `str` field gives, so a request sees the same answer as before.
        raise PydanticCustomError("string_type", "Input should be a valid string")
    return Score.parse(value)


ScoreField = Annotated[
    Score,
    PlainValidator(_score),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": SCORE_PATTERN}),
]
"""A `Score` inside, its text `"2-1"` on the wire: parsed once where a request or message
arrives, written back as text where one leaves."""


class ScoreColumn(TypeDecorator[Score]):
    """A `Score` in Python, its text (`"2-1"`) in Postgres: the column is `varchar(16)`."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: Score | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Score):
            raise TypeError(f"events.score takes a Score, got {value!r}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Score | None:
        return None if value is None else Score.parse(value)


# Lengths count what was sent, as the OpenAPI document's maxLength does; a team is trimmed after.
Name = Annotated[
    str,
    StringConstraints(max_length=128),
    AfterValidator(_reject_blank),
    AfterValidator(str.strip),
    _text(128),
]
EventType = Annotated[
    str, StringConstraints(max_length=64), AfterValidator(_reject_blank), _text(64)
]


_NAMED_FACTS = ("type", "team_1", "team_2", "event_date")


def _facts_named_in(source: object, **rest: Any) -> EventFacts:
    """`EventFacts` from the fields `source` holds under the facts' own names, plus `rest`:
    a request body and a stored row name these alike and differ in the others."""
    return EventFacts(**{name: getattr(source, name) for name in _NAMED_FACTS}, **rest)


class Request(BaseModel):
    """A request body: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


# --- Events -------------------------------------------------------------------------------


class OddsSchema(Request):
    """An event's odds per market, in requests and answers alike."""

    team_1: Money
    team_2: Money
    draw: Money

    @classmethod
    def from_domain(cls, odds: Odds) -> "OddsSchema":
        return cls(team_1=odds.team_1, team_2=odds.team_2, draw=odds.draw)

    def to_domain(self) -> Odds:
        return Odds(team_1=self.team_1, team_2=self.team_2, draw=self.draw)


class EventCreate(Request):
    type: EventType
    team_1: Name
    team_2: Name
    event_date: UtcDatetime
    deadline: UtcDatetime | None = PydanticField(
        default=None, description="When betting closes; defaults to event_date."
    )
    odds: OddsSchema

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        if self.deadline is None:
            self.deadline = self.event_date
        check_event(self.to_facts())
        return self

    def to_facts(self) -> EventFacts:
        return _facts_named_in(
            self, deadline=self.deadline or self.event_date, odds=self.odds.to_domain()
        )


def _sent_fields_only(schema: dict[str, Any]) -> None:
    # A field may be left out but never sent as null, and something must be sent: say so.
    for field in schema["properties"].values():
        field.pop("default", None)
        branches = [b for b in field.pop("anyOf", []) if b != {"type": "null"}]
        if branches:
            field.update(branches[0] if len(branches) == 1 else {"anyOf": branches})
    schema["minProperties"] = 1


class EventUpdate(Request):
    """The fields an operator changes; only those sent are applied."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_sent_fields_only)

    type: EventType | None = None
    team_1: Name | None = None
    team_2: Name | None = None
    event_date: UtcDatetime | None = None
    deadline: UtcDatetime | None = None
    odds: OddsSchema | None = None
    state: EventState | None = None
    score: ScoreField | None = None

    @model_validator(mode="after")
    def _check_not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"fields cannot be null: {', '.join(nulls)}")
        return self

    def to_changes(self) -> dict[str, Any]:
        """The changes in the domain's types, as `apply_changes` takes them."""
        changes: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        if self.odds is not None:
            changes["odds"] = self.odds.to_domain()
        return changes


class EventPublic(BaseModel):
    id: uuid.UUID
    type: str
    team_1: str
    team_2: str
    event_date: UtcDatetime
    deadline: UtcDatetime
    odds: OddsSchema
    score: ScoreField
    state: EventState
    version: int | None = PydanticField(
        description="Log position of the last change applied; null until the event is stored."
    )
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def from_facts(
        cls,
        event_id: uuid.UUID,
        facts: EventFacts,
        *,
        version: int | None,
        created_at: datetime,
        updated_at: datetime,
    ) -> "EventPublic":
        """What the API shows of an event: its facts, and where and when it was stored."""
        return cls(
            id=event_id,
            type=facts.type,
            team_1=facts.team_1,
            team_2=facts.team_2,
            event_date=facts.event_date,
            deadline=facts.deadline,
            odds=OddsSchema.from_domain(facts.odds),
            score=facts.score,
            state=facts.state,
            version=version,
            created_at=created_at,
            updated_at=updated_at,
        )

    @classmethod
    def accepted(cls, event_id: uuid.UUID, body: EventCreate, at: datetime) -> "EventPublic":
        """The event as the line provider accepted it, before the event writer stores it."""
        return cls.from_facts(event_id, body.to_facts(), version=None, created_at=at, updated_at=at)


def _fact_columns(facts: EventFacts) -> dict[str, Any]:
    """The event columns that hold what an operator sets."""
    return {
        "type": facts.type,
        "team_1": facts.team_1,
        "team_2": facts.team_2,
        "event_date": facts.event_date,
        "deadline": facts.deadline,
        "odds_team_1": facts.odds.team_1,
        "odds_team_2": facts.odds.team_2,
        "odds_draw": facts.odds.draw,
        "state": facts.state.value,
        "score": facts.score,
    }


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_state_deadline", "state", "deadline"),
        Index("ix_events_type", "type"),
        Index("ix_events_event_date", "event_date"),
    )

    id: uuid.UUID = Field(primary_key=True)
    type: str = Field(sa_type=String(64))
    team_1: str = Field(sa_type=String(128))
    team_2: str = Field(sa_type=String(128))
    event_date: datetime = Field(sa_type=DateTime(timezone=True))
    deadline: datetime = Field(sa_type=DateTime(timezone=True))
    odds_team_1: Decimal = Field(sa_type=Numeric(12, 2))
    odds_team_2: Decimal = Field(sa_type=Numeric(12, 2))
    odds_draw: Decimal = Field(sa_type=Numeric(12, 2))
    state: str = Field(sa_type=String(16))
    score: ScoreField = Field(sa_type=ScoreColumn())
    # Log position of the last message applied (docs/DESIGN.md, rule 1).
    version: int = Field(sa_type=BigInteger)
    # Log position of the last message that changed state or score: the version bets are
    # scored at. The bet writer drops updates computed from an older one.
    score_version: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))

    @classmethod
    def from_facts(
        cls, event_id: uuid.UUID, facts: EventFacts, version: int, at: datetime
    ) -> "Event":
        """A new row, stored from the message at log position `version`."""
        return cls(
            id=event_id,
            version=version,
            score_version=version,
            created_at=at,
            updated_at=at,
            **_fact_columns(facts),
        )

    def to_facts(self) -> EventFacts:
        return _facts_named_in(
            self,
            deadline=self.deadline,
            odds=Odds(team_1=self.odds_team_1, team_2=self.odds_team_2, draw=self.odds_draw),
            state=EventState(self.state),
            score=self.score,
        )

    def set_facts(self, facts: EventFacts) -> None:
        for column, value in _fact_columns(facts).items():
            setattr(self, column, value)

    def to_public(self) -> EventPublic:
        return EventPublic.from_facts(
            self.id,
            self.to_facts(),
            version=self.version,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


# --- Bets ---------------------------------------------------------------------------------


class BetCreate(Request):
    event_id: uuid.UUID
    market: Market
    amount: Money
    odds: Money | None = PydanticField(
        default=None,
        description="The market's odds as the player saw them: the bet is refused (409) "
        "if they have changed since.",
    )


class BetUpdate(Request):
    amount: Money


class BetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: str
    event_id: uuid.UUID
    market: Market
    amount: Money
    odds: Money
    potential_payout: Payout
    payout: Payout | None = PydanticField(
        description="What the player receives: null until the bet is settled, then "
        "potential_payout (win), 0.00 (lose) or the amount (void)."
    )
    state: BetState
    date_created: UtcDatetime
    updated_at: UtcDatetime


class Bet(SQLModel, table=True):
    __tablename__ = "bets"
    __table_args__ = (
        # The scorer's query: bets of one event and market whose state differs.
        Index("ix_bets_event_market_state", "event_id", "market", "state"),
        Index("ix_bets_user_date", "user_id", "date_created"),
    )

    id: uuid.UUID = Field(primary_key=True, default_factory=uuid.uuid4)
    user_id: str = Field(sa_type=String(255))
    event_id: uuid.UUID = Field(sa_column=Column(ForeignKey("events.id"), nullable=False))
    market: str = Field(sa_type=String(16))
    amount: Decimal = Field(sa_type=Numeric(12, 2))
    odds: Decimal = Field(sa_type=Numeric(12, 2))
    potential_payout: Decimal = Field(sa_type=Numeric(24, 2))
    state: str = Field(default=BetState.NONE.value, sa_type=String(16))
    # What the bet paid, set with `state` (`betting.db.payout_sql`); null until settled.
    payout: Decimal | None = Field(default=None, sa_type=Numeric(24, 2))
    # The event score_version of the last update applied; -1 before the first.
    scored_version: int = Field(default=-1, sa_type=BigInteger)
    date_created: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class BookTotal(SQLModel, table=True):
    """Running totals of one market of an event, in one of several shards.

    Kept by database triggers on `bets` (migration 0003) as bets are placed, changed and
    withdrawn, so the book sums a few rows instead of every bet. A bet counts in the shard its
    id picks: concurrent placements on one event update different rows, not one hot row.
    """

    __tablename__ = "book_totals"

    event_id: uuid.UUID = Field(sa_column=Column(ForeignKey("events.id"), primary_key=True))
    market: str = Field(primary_key=True, sa_type=String(16))
    shard: int = Field(primary_key=True, sa_type=SmallInteger)
    bets: int = Field(sa_type=BigInteger)
    stake: Decimal = Field(sa_type=Numeric(38, 2))
    potential_payout: Decimal = Field(sa_type=Numeric(38, 2))


class BetChange(SQLModel, table=True):
    """The bet states one transaction wrote, in the order written: the live stream's log.

    `xid` is the writing transaction's id (`pg_current_xact_id()`); position `n` of the
    arrays is one change. Readers take only entries of transactions that can no longer be
    running (docs/DESIGN.md, "The bet stream"), so a late commit is never skipped.
    """

    __tablename__ = "bet_changes"
    __table_args__ = (Index("ix_bet_changes_recorded_at", "recorded_at"),)

    xid: int = Field(sa_column=Column(BigInteger, primary_key=True))
    seq: int = Field(sa_column=Column(BigInteger, Identity(always=True), primary_key=True))
    bet_ids: list[uuid.UUID] = Field(sa_column=Column(ARRAY(Uuid), nullable=False))
    event_ids: list[uuid.UUID] = Field(sa_column=Column(ARRAY(Uuid), nullable=False))
    user_ids: list[str] = Field(sa_column=Column(ARRAY(String(255)), nullable=False))
    states: list[str] = Field(sa_column=Column(ARRAY(String(16)), nullable=False))
    times: list[datetime] = Field(sa_column=Column(ARRAY(DateTime(timezone=True)), nullable=False))
    recorded_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )


class IdempotencyKey(SQLModel, table=True):
    """A player's `Idempotency-Key` and the bet it created."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # Withdrawing a bet finds its key by the bet; the purge finds expired keys by age.
        Index("ix_idempotency_keys_bet_id", "bet_id"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    user_id: str = Field(primary_key=True, sa_type=String(255))
    key: str = Field(primary_key=True, sa_type=String(255))
    request_hash: str = Field(sa_type=String(64))
    # Kept when the bet is withdrawn (then null): a replay must not place a second bet.
    bet_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("bets.id", ondelete="SET NULL"), nullable=True)
    )
    created_at: datetime = Field(sa_type=DateTime(timezone=True))


class LogProgress(SQLModel, table=True):
    """How far the events table has caught up with each partition of a topic."""

    __tablename__ = "log_progress"

    topic: str = Field(primary_key=True, sa_type=String(255))
    partition: int = Field(primary_key=True)
    applied_offset: int = Field(sa_type=BigInteger)


class LogIncarnation(SQLModel, table=True):
    """Which incarnation of a topic the stored log positions come from (docs/DESIGN.md, rule 8):
    the broker's id of the topic, new each time the topic is created."""

    __tablename__ = "log_incarnations"

    topic: str = Field(primary_key=True, sa_type=String(255))
    incarnation: str = Field(sa_type=String(64))
    recorded_at: datetime = Field(sa_type=DateTime(timezone=True))


# --- Shared -------------------------------------------------------------------------------

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
