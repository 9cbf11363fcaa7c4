"""schemathesis against each of the gateway's apps, served by uvicorn as in production.

Every phase (examples, coverage, fuzzing, stateful) and every check, with an operator's and a
player's token, against the session's Postgres and broker: no server error, nothing the OpenAPI
document leaves out (status, content type, header, body), no schema-valid request refused and no
invalid one accepted. Settings: tests/integration/schemathesis.toml; the rules the document
cannot state: tests/integration/schemathesis_hooks.py. To run only this:
    .venv/bin/python -m pytest tests/integration/test_conformance.py -s
"""

import json
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from betting.auth import Role, mint_token
from betting.db import get_engine
from betting.domain import EventFacts, Market, Odds
from betting.models import Bet, Event
from tests.conftest import Stack
from tests.integration.conftest import Functions, bearer, server_process

HERE = Path(__file__).parent
REPO = HERE.parents[1]
# A bound on the run, well above what it takes (about a minute per app on 2 busy cores).
TIMEOUT_S = 600

pytestmark = pytest.mark.e2e


def _store_event(event_date: datetime, deadline: datetime) -> Event:
    facts = EventFacts(
        type="conformance",
        team_1=f"home-{uuid.uuid4().hex}",
        team_2=f"away-{uuid.uuid4().hex}",
        event_date=event_date,
        deadline=deadline,
        odds=Odds(team_1=Decimal("1.85"), team_2=Decimal("2.10"), draw=Decimal("3.40")),
    )
    event = Event.from_facts(uuid.uuid4(), facts, version=0, at=datetime.now(UTC))
    with Session(get_engine(), expire_on_commit=False) as session:
        session.add(event)
        session.commit()
    return event


def _seed() -> tuple[Event, Event]:
    """An event open for bets, and one to read and change: any single date sent stays within
    its own (the calendar's ends), and a bet keeps it from being deleted."""
    latest = datetime.max.replace(tzinfo=UTC)
    open_event = _store_event(event_date=latest, deadline=latest)
    stored = _store_event(event_date=latest, deadline=datetime.min.replace(tzinfo=UTC))
    now = datetime.now(UTC)
    bet = Bet(
        user_id="conformance-player",
        event_id=stored.id,
        market=Market.DRAW.value,
        amount=Decimal("1.00"),
        odds=Decimal("3.40"),
        potential_payout=Decimal("3.40"),
        date_created=now,
        updated_at=now,
    )
    with Session(get_engine()) as session:
        session.add(bet)
        session.commit()
    return open_event, stored


def test_schemathesis_finds_nothing_wrong(app_url: str, tmp_path: Path) -> None:
    open_event, stored = _seed()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
        "OPERATOR_TOKEN": mint_token("conformance-operator", Role.OPERATOR),
        "PLAYER_TOKEN": mint_token("conformance-player", Role.PLAYER),
        "OPEN_EVENT_ID": str(open_event.id),
        "STORED_EVENT_ID": str(stored.id),
        "CONFORMANCE_STORED_EVENT": json.dumps(
            {"id": str(stored.id), "team_1": stored.team_1, "team_2": stored.team_2}
        ),
    }
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--no-color",
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{app_url}/openapi.json",
    ]

    started = time.monotonic()
    run = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    elapsed = time.monotonic() - started

    cases = re.search(r"(\d+) generated", run.stdout)
    print(f"schemathesis on {app_url}: {cases.group(0) if cases else '?'} in {elapsed:.0f} s")
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]


def test_what_the_servers_publish_under_conformance_reaches_no_function(
    stack: Stack, app_broker: str, functions: Functions
) -> None:
    """The run checks the HTTP contract alone, whatever ran before it: were the session's
    functions (started by an earlier test) to apply the events it creates, a later request
    on one would meet dates the run cannot know, and a valid request would rightly be 422."""
    with server_process(stack, "line-provider", BETTING_KAFKA_BROKERS=app_broker) as (_, url):
        body = {
            "type": "conformance",
            "team_1": "Ajax",
            "team_2": "PSV",
            "event_date": "2030-05-01T18:45:00Z",
            "odds": {"team_1": "2.00", "team_2": "3.00", "draw": "3.50"},
        }
        created = httpx.post(
            f"{url}/events", headers=bearer(Role.OPERATOR, "conformance-operator"), json=body
        )
        assert created.status_code == 202, created.text
        event_id = created.json()["id"]
        time.sleep(3)  # what the event writer takes, many times over, on a busy machine
        assert httpx.get(f"{url}/events/{event_id}").status_code == 404
