"""The migrations own the schema: exactly what the models describe, and the domain's states
and payouts as its constraints."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Executable, create_engine, insert, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from betting.db import get_engine
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


@pytest.fixture
def empty_database(stack: Stack) -> Iterator[str]:
    """The URL of a database of its own, with no schema yet."""
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(stack.postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = stack.postgres.url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


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
