"""Rules the OpenAPI document cannot state, for the schemathesis run of test_conformance.py.

The document states every rule about one value. These tie two values together, or a value to
what is stored, and docs/API.md states them: the teams differ, betting closes no later than the
event starts, an `Idempotency-Key` names one request. A request that breaks one is refused with a
reason, rightly; so a generated case that is schema-valid (positive) but breaks one is dropped,
or its key made unique. Negative cases are left as generated.
"""

import json
import os
import uuid
from typing import Any

import schemathesis
from pydantic import TypeAdapter, ValidationError
from schemathesis import Case, HookContext

from betting.models import Name, UtcDatetime

# The stored event the run's path parameters point at: {"id", "team_1", "team_2"}.
STORED = json.loads(os.environ.get("CONFORMANCE_STORED_EVENT", "{}"))

_instant = TypeAdapter(UtcDatetime)
_team = TypeAdapter(Name)


def _read(adapter: TypeAdapter[Any], value: Any) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def _is_positive(case: Case[Any]) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def breaks_a_rule_between_values(case: Case[Any]) -> bool:
    """Whether the body breaks a rule of docs/API.md that ties it to itself or the stored event."""
    body = case.body if isinstance(case.body, dict) else {}
    if not case.path.startswith("/events"):
        return False
    event_date = _read(_instant, body.get("event_date"))
    deadline = _read(_instant, body.get("deadline"))
    if event_date and deadline and deadline > event_date:
        return True
    team_1, team_2 = _read(_team, body.get("team_1")), _read(_team, body.get("team_2"))
    if team_1 and team_1 == team_2:
        return True
    if case.method.upper() == "PATCH" and case.path_parameters.get("event_id") == STORED.get("id"):
        # One team changed to the other's stored name.
        return (team_1 is not None and team_2 is None and team_1 == STORED["team_2"]) or (
            team_2 is not None and team_1 is None and team_2 == STORED["team_1"]
        )
    return False


@schemathesis.hook
def filter_case(context: HookContext, case: Case[Any]) -> bool:
    return not (_is_positive(case) and breaks_a_rule_between_values(case))


@schemathesis.hook
def map_case(context: HookContext, case: Case[Any]) -> Case[Any]:
    key = case.headers.get("Idempotency-Key") if case.headers else None
    if _is_positive(case) and isinstance(key, str):
        # A key already used with another body is a 422: each generated request gets its own.
        case.headers["Idempotency-Key"] = f"{key[:200]}-{uuid.uuid4().hex}"
    return case
