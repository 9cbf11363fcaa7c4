"""Data functions: keyword-only, session first, one transaction each. Rules come from the domain.
(`place_new_bet`, the hot path, takes asynchronous connections instead of a session.)"""

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

from sqlalchemy import and_, func, not_, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.dialects.postgresql.psycopg2 import dialect as psycopg2_dialect
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from betting.auth import Role, User
from betting.db import has_bets
from betting.domain import (
    EventState,
    Market,
    TeamsLocked,
    apply_changes,
    changed_fields,
    check_teams_kept,
    is_open,
    potential_payout,
)
from betting.models import (
    Bet,
    BetCreate,
    BetPublic,
    Event,
    EventPublic,
    EventUpdate,
    IdempotencyKey,
)
from gateway.async_db import AsyncPostgres
from gateway.schemas import BetQuery, EventQuery, Pagination

T = TypeVar("T")


class NotFound(Exception):
    """Unknown, deleted, or not the caller's to see."""


class Conflict(Exception):
    """The request is valid but the current state forbids it."""


class OddsChanged(Conflict):
    """The market's odds are no longer those the player saw."""

    def __init__(self, market: Market, odds: Decimal) -> None:
        super().__init__(f"the odds for {market} have changed: bet again at the current odds")
        self.market = market
        self.odds = odds


class Unprocessable(Exception):
    """Invalid input that only the database can tell apart; `loc` says where it is."""

    def __init__(self, message: str, loc: tuple[str, ...]) -> None:
        super().__init__(message)
        self.loc = loc


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _autocommit(session: Session) -> Iterator[None]:
    """Each statement its own transaction: no BEGIN or COMMIT round trips around it.

    The driver's own flag, flipped for this checkout and flipped back before the connection
    goes back to the pool. (SQLAlchemy's AUTOCOMMIT isolation level does the same but, on the
    way back, sets READ COMMITTED explicitly, which psycopg2 sends as a `SET`: a round trip,
    10 % of the bet maker's thread time under load.)
    """
    driver = session.connection().connection.dbapi_connection
    assert driver is not None  # a connection just checked out is open
    driver.autocommit = True
    try:
        yield
    finally:
        driver.autocommit = False


def _page(
    session: Session, statement: SelectOfScalar[T], page: Pagination, *order: Mapped[Any]
) -> tuple[Sequence[T], int]:
    """One page of `statement`'s rows and how many there are in all: one statement, read in
    autocommit (one statement is one snapshot, so the total matches the page, and there is no
    BEGIN or ROLLBACK round trip)."""
    total = func.count().over().label("total")
    paged = statement.add_columns(total).order_by(*order).limit(page.limit).offset(page.offset)
    with _autocommit(session):
        rows = session.execute(paged).all()
        if rows:
            return [row[0] for row in rows], rows[0].total
        # Past the last page, or nothing matches: no row carries the total.
        return [], session.exec(select(func.count()).select_from(statement.subquery())).one()


# --- Events -------------------------------------------------------------------------------


def _live_event(
    session: Session, event_id: uuid.UUID, lock: Literal["share", "update"] | None = None
) -> Event:
    """The event unless it is unknown or soft-deleted, optionally locked."""
    statement = select(Event).where(Event.id == event_id, col(Event.deleted_at).is_(None))
    if lock is not None:
        statement = statement.with_for_update(read=lock == "share")
    event = session.exec(statement).first()
    if event is None:
        raise NotFound("event not found")
    return event


def get_event(*, session: Session, event_id: uuid.UUID) -> Event:
    return _live_event(session, event_id)


def list_events(*, session: Session, query: EventQuery) -> tuple[Sequence[Event], int]:
    statement = select(Event).where(col(Event.deleted_at).is_(None))
    if query.state is not None:
        statement = statement.where(Event.state == query.state.value)
    if query.type is not None:
        statement = statement.where(Event.type == query.type)
    if query.open is not None:
        # `betting.domain.is_open`, phrased for the database.
        bettable = and_(col(Event.state) == EventState.CREATED.value, col(Event.deadline) > _now())
        statement = statement.where(bettable if query.open else not_(bettable))
    return _page(session, statement, query, col(Event.event_date), col(Event.id))


def preview_event_update(
    *, session: Session, event_id: uuid.UUID, event_in: EventUpdate, at: datetime
) -> EventPublic:
    """The event as it will be once `event_in` is applied; raises the rule it breaks."""
    # The event writer checks again when the message arrives; this check answers the
    # operator now, against the state stored so far.
    event = _live_event(session, event_id)
    current = event.to_facts()
    facts = apply_changes(current, event_in.to_changes())
    try:
        check_teams_kept(
            changed_fields(current, facts), has_bets=lambda: has_bets(session, event_id)
        )
    except TeamsLocked as exc:
        raise Conflict(str(exc)) from exc
    return EventPublic.from_facts(
        event.id, facts, version=event.version, created_at=event.created_at, updated_at=at
    )


def delete_event(*, session: Session, event_id: uuid.UUID) -> None:
    """Soft-delete an event that nobody has bet on."""
    # FOR UPDATE waits for placements in flight (they hold FOR SHARE) and keeps new ones
    # out until we commit, so no bet can land on the event between the check and the delete.
    event = _live_event(session, event_id, lock="update")
    if has_bets(session, event_id):
        raise Conflict('the event has bets: cancel it instead (PATCH {"state": "cancelled"})')
    event.deleted_at = _now()
    session.add(event)
    session.commit()


# --- Bets ---------------------------------------------------------------------------------


def _open_event(session: Session, event_id: uuid.UUID) -> Event:
    """The event, locked until the transaction ends, if bets on it may change now."""
    # FOR SHARE lets any number of placements on one event run side by side but conflicts
    # with the event writer's FOR UPDATE: a transition waits for the bets in flight to
    # commit, and a bet that comes after it waits for the transition, reads the new state
    # and is refused (docs/DESIGN.md, rule 3).
    event = _live_event(session, event_id, lock="share")
    if not is_open(EventState(event.state), event.deadline, _now()):
        raise Conflict("betting on this event is closed")
    return event


def _fingerprint(bet_in: BetCreate) -> str:
    """The request's identity: the same body, however spelt, hashes the same."""
    # Without the odds the body hashes as it did before they could be sent.
    return hashlib.sha256(bet_in.model_dump_json(exclude_none=True).encode()).hexdigest()


def _replay(session: Session, user_id: str, key: str, fingerprint: str) -> Bet | None:
    """The bet an earlier request with this key created, if there was one."""
    stored = session.get(IdempotencyKey, (user_id, key))
    if stored is None:
        return None
    if stored.request_hash != fingerprint:
        raise Unprocessable(
            "this Idempotency-Key was used with a different request", ("header", "idempotency-key")
        )
    return session.get(Bet, stored.bet_id)


# A new bet's columns that the request does not decide: the model's own defaults.
_NEW_BET = {name: Bet.model_fields[name].default for name in ("state", "payout", "scored_version")}

# Placement in one statement, so one round trip: the event is locked FOR SHARE (docs/DESIGN.md,
# rule 3: a transition waits for this bet, or this bet for it) and the bet is inserted only if
# the event is open (`betting.domain.is_open`) and the odds sent, if any, are the market's
# (decided under the lock, so an odds change waits for this bet, or this bet for it). The event's
# state, deadline and odds come back either way, so a refusal can say why. `trunc(…, 2)` is
# `betting.domain.potential_payout` (amount × odds rounded down to the cent) phrased for the
# database. `{odds}` is the market's odds column, chosen from `_ODDS_COLUMNS`, never user text.
_PLACE = """
WITH event AS (
    SELECT id, state, deadline, {odds} AS odds FROM events
    WHERE id = :event_id AND deleted_at IS NULL
    FOR SHARE
), placed AS (
    INSERT INTO bets (id, user_id, event_id, market, amount, odds, potential_payout,
                      state, payout, scored_version, date_created, updated_at)
    SELECT :id, :user_id, event.id, :market, :amount, event.odds,
           trunc(:amount * event.odds, 2), :state, :payout, :scored_version, :now, :now
    FROM event
    WHERE event.state = :open_state AND event.deadline > :now
      AND (CAST(:odds AS numeric) IS NULL OR event.odds = :odds)
    RETURNING potential_payout
)
SELECT event.state, event.deadline, event.odds, placed.potential_payout
FROM event LEFT JOIN placed ON true
"""
_ODDS_COLUMNS = {
    Market.TEAM_1: "odds_team_1",
    Market.TEAM_2: "odds_team_2",
    Market.DRAW: "odds_draw",
}
_PLACE_IN = {market: text(_PLACE.format(odds=column)) for market, column in _ODDS_COLUMNS.items()}


# The same statement in psycopg2's own parameter style, for `place_new_bet`'s connections.
_PLACE_PYFORMAT = {
    market: str(statement.compile(dialect=psycopg2_dialect()))  # type: ignore[no-untyped-call]
    for market, statement in _PLACE_IN.items()
}


def _placement(user: User, bet_in: BetCreate) -> dict[str, Any]:
    """`_PLACE`'s parameters for a new bet: its id and time are decided here."""
    return {
        "id": uuid.uuid4(),
        "user_id": user.id,
        "event_id": bet_in.event_id,
        "market": bet_in.market.value,
        "amount": bet_in.amount,
        "odds": bet_in.odds,
        "now": _now(),
        "open_state": EventState.CREATED.value,
        **_NEW_BET,
    }


def _placed(placement: dict[str, Any], row: tuple[Any, ...] | None) -> dict[str, Any]:
    """The new bet's columns from `_PLACE`'s answer; raise why it was refused otherwise."""
    if row is None:
        raise NotFound("event not found")
    state, deadline, odds, payout = row
    if payout is None:  # not inserted: the rules say which refusal
        if not is_open(EventState(state), deadline, placement["now"]):
            raise Conflict("betting on this event is closed")
        raise OddsChanged(Market(placement["market"]), odds)
    return {
        "id": placement["id"],
        "user_id": placement["user_id"],
        "event_id": placement["event_id"],
        "market": placement["market"],
        "amount": placement["amount"],
        "odds": odds,
        "potential_payout": payout,
        "date_created": placement["now"],
        "updated_at": placement["now"],
        **_NEW_BET,
    }


def _insert_bet(session: Session, user: User, bet_in: BetCreate) -> Bet:
    """Insert the bet if its event is open and its odds hold; raise why not otherwise."""
    placement = _placement(user, bet_in)
    row = session.execute(_PLACE_IN[bet_in.market], placement).one_or_none()
    return Bet(**_placed(placement, None if row is None else tuple(row)))


async def place_new_bet(*, postgres: AsyncPostgres, user: User, bet_in: BetCreate) -> BetPublic:
    """Accept a bet sent without an Idempotency-Key while its event is open: `_PLACE`, one
    statement in a transaction of its own, on an asynchronous connection (no worker thread)."""
    placement = _placement(user, bet_in)
    row = await postgres.fetchone(_PLACE_PYFORMAT[bet_in.market], placement)
    return BetPublic.model_validate(_placed(placement, row))


def place_bet(
    *, session: Session, user: User, bet_in: BetCreate, idempotency_key: str | None
) -> tuple[Bet, bool]:
    """Accept a bet while its event is open; return it and whether it is new."""
    if idempotency_key is None:
        # One statement is one transaction: the lock and the insert need no BEGIN or COMMIT.
        with _autocommit(session):
            return _insert_bet(session, user, bet_in), True
    fingerprint = _fingerprint(bet_in)
    earlier = _replay(session, user.id, idempotency_key, fingerprint)
    if earlier is not None:
        return earlier, False
    bet = _insert_bet(session, user, bet_in)
    # Inserting the key is what decides a race between requests that share it: a second
    # insert waits for the first transaction, then does nothing if it committed.
    claim = (
        insert(IdempotencyKey)
        .values(
            user_id=user.id,
            key=idempotency_key,
            request_hash=fingerprint,
            bet_id=bet.id,
            created_at=bet.date_created,
        )
        .on_conflict_do_nothing()
        .returning(col(IdempotencyKey.bet_id))
    )
    if session.exec(claim).first() is None:
        session.rollback()
        earlier = _replay(session, user.id, idempotency_key, fingerprint)
        if earlier is None:  # the winner's bet was withdrawn meanwhile
            raise Conflict("the bet made with this Idempotency-Key was withdrawn")
        return earlier, False
    session.commit()
    return bet, True


def list_bets(*, session: Session, viewer: User, query: BetQuery) -> tuple[Sequence[Bet], int]:
    statement = select(Bet)
    if viewer.role is not Role.OPERATOR:
        statement = statement.where(Bet.user_id == viewer.id)
    if query.user_id is not None:
        statement = statement.where(Bet.user_id == query.user_id)
    if query.event_id is not None:
        statement = statement.where(Bet.event_id == query.event_id)
    if query.state is not None:
        statement = statement.where(Bet.state == query.state.value)
    if query.market is not None:
        statement = statement.where(Bet.market == query.market.value)
    return _page(session, statement, query, col(Bet.date_created), col(Bet.id))


def get_bet(*, session: Session, viewer: User, bet_id: uuid.UUID) -> Bet:
    """The bet if `viewer` owns it or is an operator."""
    bet = session.get(Bet, bet_id)
    if bet is None or (viewer.role is not Role.OPERATOR and bet.user_id != viewer.id):
        raise NotFound("bet not found")
    return bet


def _own_bet_while_open(session: Session, owner: User, bet_id: uuid.UUID) -> Bet:
    """The caller's bet, locked, with its event locked FOR SHARE and open."""
    bet = session.get(Bet, bet_id)
    if bet is None or bet.user_id != owner.id:
        raise NotFound("bet not found")
    _open_event(session, bet.event_id)
    # Locked event first, then the bet, as placement does; re-read in case a concurrent
    # request withdrew it meanwhile.
    bet = session.get(Bet, bet_id, with_for_update=True, populate_existing=True)
    if bet is None:
        raise NotFound("bet not found")
    return bet


def change_bet_amount(*, session: Session, owner: User, bet_id: uuid.UUID, amount: Decimal) -> Bet:
    """Change the stake while the event is open; the odds stay those the bet was placed at."""
    bet = _own_bet_while_open(session, owner, bet_id)
    bet.amount = amount
    bet.potential_payout = potential_payout(amount, bet.odds)
    bet.updated_at = _now()
    session.add(bet)
    session.commit()
    return bet


def withdraw_bet(*, session: Session, owner: User, bet_id: uuid.UUID) -> None:
    """Delete a bet while its event is open."""
    bet = _own_bet_while_open(session, owner, bet_id)
    session.delete(bet)
    session.commit()
