"""Two event writers overlapping during a rebalance both apply the same batch: the second to
insert a new event finds it there and treats its message as the duplicate it is."""

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from betting import topics
from betting.db import get_engine, session_scope
from betting.messages import EventCreated, EventUpdated, encode
from betting.models import Event, EventCreate, EventUpdate
from betting.streams import LogRecord, Rejected
from functions.event_writer.apply import apply_event_messages
from tests.conftest import Stack

# Positions far past any the session's log reaches, on a partition of a topic of their own.
TOPIC = f"{topics.EVENTS}.overlap-test"


def _records(event_id: uuid.UUID) -> list[LogRecord]:
    now = datetime.now(UTC)
    created = EventCreated(
        event_id=event_id,
        sent_at=now,
        event=EventCreate.model_validate(
            {
                "type": "football",
                "team_1": "Ajax",
                "team_2": "PSV",
                "event_date": now + timedelta(hours=2),
                "odds": {"team_1": "2.10", "team_2": "3.40", "draw": "3.00"},
            }
        ),
    )
    started = EventUpdated(
        event_id=event_id, sent_at=now, changes=EventUpdate.model_validate({"state": "active"})
    )
    key = str(event_id).encode()
    return [
        LogRecord(0, 10_000_000, 0, key, encode(created)),
        LogRecord(0, 10_000_001, 0, key, encode(started)),
    ]


def test_a_new_event_inserted_by_two_overlapping_writers_is_applied_once(stack: Stack) -> None:
    event_id = uuid.uuid4()
    created, started = _records(event_id)
    outcome: dict[str, Any] = {}

    def second_writer() -> None:
        try:
            with session_scope() as session:
                outcome["rejected"] = apply_event_messages(
                    session=session, topic=TOPIC, records=[created, started]
                )
        except Exception as exc:  # the test reports it below
            outcome["error"] = exc

    with Session(get_engine()) as first, first.begin():
        assert apply_event_messages(session=first, topic=TOPIC, records=[created]) == []
        # The second writer's insert now waits on the first's uncommitted row.
        second = threading.Thread(target=second_writer)
        second.start()
        second.join(1.0)
        assert second.is_alive(), outcome
    second.join(30)

    assert "error" not in outcome, outcome.get("error")
    rejected: list[Rejected] = outcome["rejected"]
    assert rejected == []
    with Session(get_engine()) as session:
        event = session.get(Event, event_id)
        assert event is not None
        assert (event.state, event.version) == ("active", started.offset)
