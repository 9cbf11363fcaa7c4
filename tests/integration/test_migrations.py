"""The migrations own the schema, and it is exactly what the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import betting.models  # noqa: F401  (registers the tables)
from betting.db import get_engine
from tests.conftest import Stack


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
