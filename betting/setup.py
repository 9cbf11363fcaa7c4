"""Schema migrations and topic creation: what must be in place before any component runs.

Production-safe (no development dependencies): the image's `betting setup` and `betting
migrate` run these, as do the Kubernetes Jobs and `make run`.
"""

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from betting import topics
from betting.db import rebase_versions, session_scope
from betting.kafka import client_config
from betting.settings import get_settings

log = logging.getLogger(__name__)

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def migrate() -> None:
    """Bring the schema at `BETTING_DATABASE_URL` to the newest migration."""
    command.upgrade(Config(str(ALEMBIC_INI)), "head")


def prepare() -> set[str]:
    """Migrate, create the topics, and rebase the stored versions if the log is new."""
    migrate()
    created = topics.ensure_topics(client_config(get_settings()))
    if topics.EVENTS in created:
        with session_scope() as session:
            rebase_versions(session)
        log.info("new %s log: stored versions rebased", topics.EVENTS)
    return created
