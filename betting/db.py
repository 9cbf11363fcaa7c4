"""The database engine, sessions, and the few statements several components share."""

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple
from typing import cast as cast_type

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    ColumnExpressionArgument,
    Engine,
    Insert,
    Table,
    TextClause,
    Update,
    and_,
    case,
    cast,
    column,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    literal,
    null,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.types import Text
from sqlmodel import Session, col, select

from betting.domain import (
    SETTLEMENTS,
    BetState,
    EventFacts,
    EventState,
    Market,
    Settlement,
    score_bet,
)
from betting.models import Bet, BetChange, Event, LogIncarnation, LogProgress
from betting.settings import get_settings

# The event writer notifies this channel when it records progress; the scorer listens on it.
PROGRESS_CHANNEL = "log_progress"


# Whether this process runs a function (or `betting setup`) rather than an HTTP server: which
# statement and lock timeouts its connections get (`connect_options`).
_batch_work = False


def use_function_timeouts() -> None:
    """Give this process's connections the functions' (longer) timeouts, from now on.

    Called by the launcher's function commands and `betting setup`, before they connect
    (not by `build_app`: a test process builds apps and serves the gateway alike).
    """
    global _batch_work
    _batch_work = True
    get_engine.cache_clear()


def connect_options() -> str:
    """libpq's `options` for every connection this process opens: the statement and lock
    timeouts of its kind (BETTING_DB_* for the servers, BETTING_FUNCTIONS_DB_* otherwise).

    Set at connect time, so they bound every statement without a round trip of their own.
    """
    settings = get_settings()
    if _batch_work:
        statement, lock = (
            settings.functions_db_statement_timeout_ms,
            settings.functions_db_lock_timeout_ms,
        )
    else:
        statement, lock = settings.db_statement_timeout_ms, settings.db_lock_timeout_ms
    return f"-c statement_timeout={statement} -c lock_timeout={lock}"


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine (a connection pool)."""
    settings = get_settings()
    return create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5, "options": connect_options()},
    )


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    with Session(get_engine(), expire_on_commit=False) as session, session.begin():
        yield session


def rebase_versions(session: Session, topic: str) -> None:
    """Forget the positions in `topic` (the events' log) recorded in the database.

    Run when that topic is a new incarnation: its offsets restart at 0, so the versions
    remembered from the old log would make every new message look stale.
    """
    session.execute(text("UPDATE events SET version = -1, score_version = -1"))
    session.execute(text("UPDATE bets SET scored_version = -1"))
    session.execute(delete(LogProgress).where(col(LogProgress.topic) == topic))
    settle_lost_updates(session)


def settle_lost_updates(session: Session) -> None:
    """Give every bet the state its event says: updates still in the old log are gone."""
    for event in session.exec(select(Event).where(col(Event.state) != EventState.CREATED.value)):
        settle_bets(session, event.id, event.to_facts())


def log_is(session: Session, topic: str, incarnation: str) -> bool:
    """Whether the stored positions in `topic` come from `incarnation`; if so, no rebase can
    run until this transaction ends (the row is held FOR SHARE)."""
    stored = session.exec(
        select(LogIncarnation.incarnation)
        .where(col(LogIncarnation.topic) == topic)
        .with_for_update(read=True)
    ).first()
    return stored == incarnation


def adopt_log(
    session: Session,
    topic: str,
    incarnation: str,
    *,
    rebase: Callable[[Session], None],
    rebase_unknown: bool,
) -> bool:
    """Record that positions in `topic` now come from `incarnation`, rebasing first unless
    they already did; return whether it rebased.

    With none recorded (a database older than this record), `rebase_unknown` says whether the
    log is new: `betting setup` knows whether it just created the topic, a function does not
    and rebases, which costs a settle but never skips a message.
    """
    stored = session.get(LogIncarnation, topic, with_for_update=True)
    if stored is not None and stored.incarnation == incarnation:
        return False
    rebased = stored is not None or rebase_unknown
    if rebased:
        rebase(session)
    values = {"topic": topic, "incarnation": incarnation, "recorded_at": func.now()}
    statement = pg_insert(LogIncarnation).values(values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["topic"],
            set_={"incarnation": incarnation, "recorded_at": func.now()},
        )
    )
    return rebased


class StaleBets(NamedTuple):
    """The bets of one event and market whose state is not `target`, the one its score gives."""

    market: Market
    target: BetState
    where: ColumnElement[bool]


def stale_bets(event_id: uuid.UUID, facts: EventFacts) -> Iterator[StaleBets]:
    """The bets of an event whose state differs from what its state and score say.

    The bet scorer streams them after a change; the rebase settles them in place. One
    condition per market, so each is served by the (event_id, market, state) index.
    """
    for market in Market:
        target = score_bet(market, facts.state, facts.score)
        yield StaleBets(
            market,
            target,
            and_(
                col(Bet.event_id) == event_id,
                col(Bet.market) == market.value,
                col(Bet.state) != target.value,
            ),
        )


def payout_sql(
    state: ColumnElement[str],
    *,
    amount: ColumnExpressionArgument[Decimal],
    potential: ColumnExpressionArgument[Decimal],
) -> ColumnElement[Decimal | None]:
    """What a bet in `state` pays, in SQL over its `amount` and `potential` payout.

    The domain's `SETTLEMENTS`, phrased for the database: a `CASE` over the states that pay.
    """
    paid: dict[Settlement, ColumnExpressionArgument[Decimal]] = {
        Settlement.WINNINGS: potential,
        Settlement.NOTHING: literal(Decimal("0.00")),
        Settlement.STAKE: amount,
    }
    return case(
        *(
            (state == bet_state.value, paid[settlement])
            for bet_state, settlement in SETTLEMENTS.items()
            if settlement is not Settlement.PENDING
        ),
        else_=null(),
    )


BET_CHANGES_CHANNEL = "bet_changes"
"""What an append to `bet_changes` notifies (migration 0003's trigger); the gateway listens."""

# What the log keeps of each changed bet, in `BetChange`'s order: which bet, whose, on what
# event, its new state, and the time it now shows.
_CHANGED = ("id", "event_id", "user_id", "state", "updated_at")


def returning_changed(alias: str) -> str:
    """The RETURNING clause `log_changes` needs of an `UPDATE bets AS alias` written as text."""
    return "RETURNING " + ", ".join(f"{alias}.{name}" for name in _CHANGED)


def log_changes(update_bets: TextClause | Update) -> Insert:
    """`update_bets` and, in the same statement, one entry in the bet stream's log (its
    transaction's id, then the bets it changed as parallel arrays); nothing if none changed.

    A text statement must end with `returning_changed`. One row per statement, not per bet,
    so a batch of thousands of updates adds one small insert, and one notification.
    """
    columns = [inspect(Bet).local_table.c[name] for name in _CHANGED]
    if isinstance(update_bets, TextClause):
        changed = update_bets.columns(*(column(c.name, c.type) for c in columns)).cte("changed")
    else:
        changed = update_bets.returning(*columns).cte("changed")
    # pg_current_xact_id() is an xid8: as text, then bigint, which holds it for ever.
    xid = cast(cast(func.pg_current_xact_id(), Text), BigInteger)
    # The table, not the entity: an ORM insert with parameters would be taken for a bulk insert.
    return insert(cast_type(Table, inspect(BetChange).local_table)).from_select(
        ["xid", "bet_ids", "event_ids", "user_ids", "states", "times"],
        select(xid, *(func.array_agg(changed.c[name]) for name in _CHANGED)).having(
            func.count() > 0
        ),
    )


def settle_bets(session: Session, event_id: uuid.UUID, facts: EventFacts) -> None:
    """Give the event's stale bets, in place, the state its facts say and what that pays;
    the bet stream sees each change."""
    for stale in stale_bets(event_id, facts):
        target = stale.target.value
        session.execute(
            log_changes(
                update(Bet)
                .where(stale.where)
                .values(
                    state=target,
                    payout=payout_sql(
                        literal(target),
                        amount=col(Bet.amount),
                        potential=col(Bet.potential_payout),
                    ),
                )
            )
        )


def has_bets(session: Session, event_id: uuid.UUID) -> bool:
    """Whether anyone has bet on the event (one index probe)."""
    return (
        session.exec(select(Bet.id).where(col(Bet.event_id) == event_id).limit(1)).first()
        is not None
    )
