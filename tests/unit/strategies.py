"""Shared builders and hypothesis strategies for the unit tests."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from betting.domain import MAX_GOALS, MAX_MONEY, EventFacts, EventState, Market, Odds, Score

# Enough examples to find edge cases, few enough to keep the unit suite in seconds.
FAST = settings(max_examples=200, deadline=None)

EVENT_DATE = datetime(2030, 6, 1, 18, 0, tzinfo=UTC)
# How far along its life an event is; the two ends, finished and cancelled, are equally far.
STATE_ORDER = {
    EventState.CREATED: 0,
    EventState.ACTIVE: 1,
    EventState.FINISHED: 2,
    EventState.CANCELLED: 2,
}

markets = st.sampled_from(list(Market))
event_states = st.sampled_from(list(EventState))
goals = st.integers(min_value=0, max_value=MAX_GOALS)
scores = st.builds(Score, goals, goals)
money = st.decimals(min_value=Decimal("0.01"), max_value=MAX_MONEY, places=2)


def make_facts(**overrides: Any) -> EventFacts:
    """A valid `created` event at 0-0, with any field overridden."""
    fields: dict[str, Any] = {
        "type": "football",
        "team_1": "Ajax",
        "team_2": "PSV",
        "event_date": EVENT_DATE,
        "deadline": EVENT_DATE - timedelta(hours=1),
        "odds": Odds(team_1=Decimal("2.10"), team_2=Decimal("3.40"), draw=Decimal("3.00")),
    }
    fields.update(overrides)
    return EventFacts(**fields)


def event_create_body(**overrides: Any) -> dict[str, Any]:
    """A valid `POST /events` body as JSON-compatible data, with any key overridden."""
    body: dict[str, Any] = {
        "type": "football",
        "team_1": "Ajax",
        "team_2": "PSV",
        "event_date": "2030-06-01T18:00:00+00:00",
        "deadline": "2030-06-01T17:00:00+00:00",
        "odds": {"team_1": "2.10", "team_2": "3.40", "draw": "3.00"},
    }
    body.update(overrides)
    return body
