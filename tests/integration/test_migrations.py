"""The migrations own the schema: exactly what the models describe, and the domain's states
and payouts as its constraints."""

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Executable, create_engine, insert, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from betting.db import BET_CHANGES_CHANNEL, get_engine, settle_bets
from betting.domain import BetState, EventState, settled_payout
from betting.models import Bet, Event
from tests.conftest import Stack
from tests.unit.strategies import make_facts

ROOT = Path(__file__).resolve().parents[2]


def test_migrated_schema_matches_the_models(stack: Stack) -> None:
    with get_engine().connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


def test_queries_have_their_indexes(stack: Stack) -> None:
    indexes = {
        table: {tuple(ix["column_names"]) for ix in inspect(get_engine()).get_indexes(table)}
        for table in ("events", "bets")
    }
    assert ("event_id", "market", "state") in indexes["bets"]  # the scorer's query
    assert ("user_id", "date_created") in indexes["bets"]  # a player's bets
    assert ("state", "deadline") in indexes["events"]  # open events


# --- What the database accepts ------------------------------------------------------------

AMOUNT, POTENTIAL = Decimal("10.00"), Decimal("25.00")
CANDIDATE_PAYOUTS = [None, Decimal("0.00"), AMOUNT, POTENTIAL]


def _accepts(connection: Connection, statement: Executable) -> bool:
    """Whether the database takes `statement`; nothing it writes is kept."""
    savepoint = connection.begin_nested()
    try:
        connection.execute(statement)
    except IntegrityError:
        return False
    finally:
        savepoint.rollback()
    return True


def _event_row(state: str) -> dict[str, Any]:
    facts = make_facts()
    row = Event.from_facts(uuid.uuid4(), facts, version=0, at=datetime.now(UTC)).model_dump()
    return {**row, "score": facts.score, "state": state}  # the column takes a Score


def _bet_row(event_id: uuid.UUID, state: str, payout: Decimal | None) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": uuid.uuid4(),
        "user_id": "player-1",
        "event_id": event_id,
        "market": "draw",
        "amount": AMOUNT,
        "odds": Decimal("2.50"),
        "potential_payout": POTENTIAL,
        "state": state,
        "payout": payout,
        "scored_version": 0,
        "date_created": now,
        "updated_at": now,
    }


@pytest.mark.parametrize("state", [*EventState, "abandoned"])
def test_the_database_takes_exactly_the_event_states_the_domain_names(
    stack: Stack, state: str
) -> None:
    with get_engine().connect() as connection:
        accepted = _accepts(connection, insert(Event).values(_event_row(state)))
    assert accepted is (state in set(EventState))


@pytest.mark.parametrize("state", [*BetState, "cashed_out"])
def test_the_database_takes_a_bet_only_with_the_payout_its_state_gives(
    stack: Stack, state: str
) -> None:
    with get_engine().connect() as connection, connection.begin():
        event = _event_row(EventState.CREATED)
        connection.execute(insert(Event).values(event))
        accepted = {
            payout
            for payout in CANDIDATE_PAYOUTS
            if _accepts(connection, insert(Bet).values(_bet_row(event["id"], state, payout)))
        }
        connection.rollback()
    if state in set(BetState):
        assert accepted == {settled_payout(BetState(state), AMOUNT, POTENTIAL)}
    else:
        assert accepted == set()


# --- Upgrading a database that has data ---------------------------------------------------


def _alembic(url: str, *args: str) -> None:
    env = {**os.environ, "BETTING_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env, check=True)


def test_upgrading_gives_settled_bets_their_payout(empty_database: str) -> None:
    _alembic(empty_database, "upgrade", "0001")
    engine = create_engine(empty_database)
    bets = {"win": uuid.uuid4(), "lose": uuid.uuid4(), "winning": uuid.uuid4()}
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO events VALUES ('00000000-0000-0000-0000-000000000001', 'football',"
                " 'Ajax', 'PSV', now(), now(), 2, 3, 4, 'finished', '1-0', 5, 5, now(), now(),"
                " NULL)"
            )
        )
        for state, bet_id in bets.items():
            connection.execute(
                text(
                    "INSERT INTO bets VALUES (:id, 'p', '00000000-0000-0000-0000-000000000001',"
                    " 'team_1', 10, 2.5, 25, :state, 5, now(), now())"
                ),
                {"id": bet_id, "state": state},
            )

    _alembic(empty_database, "upgrade", "head")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, state, payout FROM bets")).all()
    engine.dispose()
    assert {bet_id: payout for bet_id, _, payout in rows} == {
        bet_id: settled_payout(BetState(state), Decimal("10.00"), Decimal("25.00"))
        for state, bet_id in bets.items()
    }
    _alembic(empty_database, "downgrade", "0001")  # and back, with nothing 0001 cannot hold


# --- The book's running totals and the stream's log ------------------------------------

TOTALS = (
    "SELECT market, sum(bets), sum(stake), sum(potential_payout) FROM book_totals"
    " WHERE event_id = :event GROUP BY market ORDER BY market"
)
AGGREGATE = (
    "SELECT market, count(*), sum(amount), sum(potential_payout) FROM bets"
    " WHERE event_id = :event GROUP BY market ORDER BY market"
)
BULK_BETS = """
    INSERT INTO bets (id, user_id, event_id, market, amount, odds, potential_payout, state,
                      payout, scored_version, date_created, updated_at)
    SELECT gen_random_uuid(), 'p' || g, :event, (ARRAY['team_1', 'team_2', 'draw'])[1 + g % 3],
           g, 2.5, g * 2.5, 'none', NULL, -1, now(), now()
    FROM generate_series(1, :count) AS g
"""


def _totals_and_aggregate(connection: Connection, event_id: uuid.UUID) -> tuple[Any, Any]:
    params = {"event": event_id}
    return (
        [tuple(row) for row in connection.execute(text(TOTALS), params)],
        [tuple(row) for row in connection.execute(text(AGGREGATE), params)],
    )


def test_the_book_totals_follow_every_insert_change_and_delete_of_bets(stack: Stack) -> None:
    with get_engine().begin() as connection:
        event = _event_row(EventState.CREATED)
        connection.execute(insert(Event).values(event))
        connection.execute(text(BULK_BETS), {"event": event["id"], "count": 40})
        connection.execute(insert(Bet).values(_bet_row(event["id"], "none", None)))
        # A new stake, a state change (which the totals ignore), a bulk withdrawal.
        connection.execute(
            text("UPDATE bets SET amount = amount + 1, potential_payout = potential_payout + 3"
                 " WHERE event_id = :event AND user_id IN ('p1', 'p2', 'p9')"),
            {"event": event["id"]},
        )  # fmt: skip
        connection.execute(
            text("UPDATE bets SET state = 'winning' WHERE event_id = :event"),
            {"event": event["id"]},
        )
        connection.execute(
            text("DELETE FROM bets WHERE event_id = :event AND user_id IN ('p3', 'p4', 'p5')"),
            {"event": event["id"]},
        )
        totals, aggregate = _totals_and_aggregate(connection, event["id"])
        connection.rollback()

    assert totals == aggregate
    assert sum(row[1] for row in totals) == 38


def test_upgrading_counts_the_bets_already_placed(empty_database: str) -> None:
    _alembic(empty_database, "upgrade", "0002")
    engine = create_engine(empty_database)
    event = _event_row(EventState.CREATED)
    with engine.begin() as connection:
        connection.execute(insert(Event).values(event))
        connection.execute(text(BULK_BETS), {"event": event["id"], "count": 25})

    _alembic(empty_database, "upgrade", "head")
    with engine.connect() as connection:
        totals, aggregate = _totals_and_aggregate(connection, event["id"])
    engine.dispose()
    assert totals == aggregate
    assert sum(row[1] for row in totals) == 25
    _alembic(empty_database, "downgrade", "0002")


def test_a_state_change_is_logged_and_notified_once_per_statement(stack: Stack) -> None:
    listener = get_engine().raw_connection()
    raw = listener.driver_connection
    assert raw is not None
    try:
        raw.autocommit = True
        with raw.cursor() as cursor:
            cursor.execute(f"LISTEN {BET_CHANGES_CHANNEL}")
        with Session(get_engine()) as session:
            event = Event.from_facts(uuid.uuid4(), make_facts(), version=0, at=datetime.now(UTC))
            session.add(event)
            session.flush()
            bets = [_bet_row(event.id, "none", None) for _ in range(3)]
            session.execute(insert(Bet).values(bets))
            event_id = event.id
            facts = dataclasses.replace(event.to_facts(), state=EventState.CANCELLED)
            settle_bets(session, event_id, facts)  # three statements, one per market
            settle_bets(session, event_id, facts)  # nothing left to change: nothing logged
            session.commit()
        time.sleep(0.2)
        raw.poll()
        notified = [n.channel for n in raw.notifies]
        with get_engine().connect() as connection:
            logged = connection.execute(
                text("SELECT bet_ids, states FROM bet_changes WHERE :event = ANY(event_ids)"),
                {"event": event_id},
            ).all()
    finally:
        listener.invalidate()  # autocommit and LISTEN: not a connection to give back to the pool

    # All three bets are on one market: one entry; NOTIFY folds a transaction's duplicates.
    assert notified == [BET_CHANGES_CHANNEL]
    assert [(set(ids), states) for ids, states in logged] == [
        ({bet["id"] for bet in bets}, ["void", "void", "void"])
    ]
