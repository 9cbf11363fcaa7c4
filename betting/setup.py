"""Schema migrations and topic creation: what must be in place before any component runs.

Production-safe (no development dependencies): the image's `betting setup` and `betting
migrate` run these, as do the Kubernetes Jobs and `make run`.
"""

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from betting import topics
from betting.db import session_scope
from betting.incarnations import REBASES, adopt
from betting.kafka import client_config
from betting.settings import get_settings

log = logging.getLogger(__name__)

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def migrate() -> None:
    """Bring the schema at `BETTING_DATABASE_URL` to the newest migration."""
    command.upgrade(Config(str(ALEMBIC_INI)), "head")


def prepare() -> set[str]:
    """Migrate, create the topics, and record which incarnation of each log the stored
    positions come from, rebasing them for a new one (docs/DESIGN.md, rule 8)."""
    migrate()
    connection = client_config(get_settings())
    created = topics.ensure_topics(connection)
    for topic in REBASES:
        incarnation = topics.incarnation(connection, topic)
        with session_scope() as session:
            if adopt(session, topic, incarnation, rebase_unknown=topic in created):
                log.info("new %s log: stored positions rebased", topic)
    return created
