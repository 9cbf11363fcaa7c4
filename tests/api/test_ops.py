"""Tokens, probes, metrics, the OpenAPI document, and what happens when a dependency is down."""

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine

from betting.auth import ALGORITHM, Role, mint_token
from betting.db import get_engine
from betting.models import Event
from betting.settings import get_settings
from gateway.deps import get_publisher
from gateway.main import app
from gateway.producer import EventPublisher
from launcher.local import free_port
from tests.api.conftest import Caller, soon


def signed(claims: dict[str, Any], secret: str | None = None) -> dict[str, str]:
    token = jwt.encode(claims, secret or get_settings().auth_secret, algorithm=ALGORITHM)
    return {"Authorization": f"Bearer {token}"}


# --- Tokens -------------------------------------------------------------------------------


def test_bad_tokens_are_401_with_a_bearer_challenge(client: TestClient) -> None:
    hour = datetime.now(UTC) + timedelta(hours=1)
    bad = {
        "garbage": {"Authorization": "Bearer not-a-jwt"},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "expired": {"Authorization": f"Bearer {mint_token('p', Role.PLAYER, ttl_s=-10)}"},
        "wrong secret": signed({"sub": "p", "role": "player", "exp": hour}, "x" * 32),
        "no expiry": signed({"sub": "p", "role": "player"}),
        "no subject": signed({"role": "player", "exp": hour}),
        "unknown role": signed({"sub": "p", "role": "admin", "exp": hour}),
    }

    answers = {name: client.get("/bets", headers=headers) for name, headers in bad.items()}

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(bad, 401)
    assert all(r.headers["www-authenticate"] == "Bearer" for r in answers.values())
    # One fixed answer: the library's reasons (which claim, which check) help an attacker only.
    details = {name: r.json()["detail"] for name, r in answers.items()}
    assert details == {
        **dict.fromkeys(bad, "invalid or expired token"),
        "basic": "not authenticated",
    }


def test_the_role_comes_from_the_token(client: TestClient) -> None:
    hour = datetime.now(UTC) + timedelta(hours=1)

    response = client.get("/bets", headers=signed({"sub": "o", "role": "operator", "exp": hour}))

    assert response.status_code == 200


# --- Probes -------------------------------------------------------------------------------


def test_healthz_says_ok(client: TestClient) -> None:
    response = client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_is_ok_when_the_database_and_broker_answer(client: TestClient) -> None:
    response = client.get("/readyz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.fixture
def database_down() -> Iterator[Engine]:
    """The app's engine points at a port where no database listens."""
    engine = create_engine(
        f"postgresql+psycopg2://nobody@127.0.0.1:{free_port()}/nothing",
        connect_args={"connect_timeout": 1},
    )
    app.dependency_overrides[get_engine] = lambda: engine
    yield engine
    del app.dependency_overrides[get_engine]
    engine.dispose()


@pytest.fixture
def broker_down() -> Iterator[EventPublisher]:
    """The app's producer points at a port where no broker listens."""
    publisher = EventPublisher(f"127.0.0.1:{free_port()}", timeout_s=1.0)
    app.dependency_overrides[get_publisher] = lambda: publisher
    yield publisher
    del app.dependency_overrides[get_publisher]
    publisher.close(timeout_s=0)


@pytest.mark.usefixtures("database_down")
def test_without_the_database_readyz_and_reads_are_503(client: TestClient, player: Caller) -> None:
    ready = client.get("/readyz")
    events = client.get("/events")
    bets = client.post(
        "/bets",
        json={"event_id": str(uuid.uuid4()), "market": "draw", "amount": "1"},
        headers=player.headers,
    )

    assert (ready.status_code, ready.json()) == (503, {"detail": "unavailable: database"})
    assert (events.status_code, bets.status_code) == (503, 503)
    assert bets.json() == {"detail": "the database is unavailable"}


@pytest.mark.usefixtures("broker_down")
def test_without_the_broker_readyz_and_event_writes_are_503(
    client: TestClient, operator: Caller, make_event: Callable[..., Event]
) -> None:
    body = {
        "type": "football",
        "team_1": "Ajax",
        "team_2": "PSV",
        "event_date": soon().isoformat(),
        "odds": {"team_1": "1.85", "team_2": "2.10", "draw": "3.40"},
    }

    ready = client.get("/readyz")
    created = client.post("/events", json=body, headers=operator.headers)
    updated = client.patch(
        f"/events/{make_event().id}", json={"state": "active"}, headers=operator.headers
    )

    assert (ready.status_code, ready.json()) == (503, {"detail": "unavailable: broker"})
    assert (created.status_code, updated.status_code) == (503, 503)
    assert created.json() == {"detail": "the broker is unavailable"}


# --- Metrics ------------------------------------------------------------------------------


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text, 0 if absent."""
    for family in text_string_to_metric_families(text):
        for series in family.samples:
            if series.name == name and series.labels == labels:
                return float(series.value)
    return 0.0


def test_metrics_count_requests_by_route_template_and_business_counters(
    client: TestClient,
    operator: Caller,
    make_event: Callable[..., Event],
    make_bet: Callable[..., dict[str, Any]],
) -> None:
    route = {"method": "GET", "route": "/events/{event_id}", "status": "200"}
    before = client.get("/metrics").text
    event = make_event()
    client.get(f"/events/{event.id}")
    client.get(f"/events/{event.id}")
    make_bet(event_id=str(event.id))
    odds = {"team_1": "1.50", "team_2": "2.50", "draw": "3.50"}
    client.patch(f"/events/{event.id}", json={"odds": odds}, headers=operator.headers)

    response = client.get("/metrics")

    after = response.text
    assert response.headers["content-type"].startswith("text/plain")
    requests = sample(after, "gateway_requests_total", **route)
    assert requests - sample(before, "gateway_requests_total", **route) == 2
    assert sample(after, "gateway_request_duration_seconds_count", **route) >= 2
    assert (
        sample(after, "gateway_bets_placed_total") - sample(before, "gateway_bets_placed_total")
        == 1
    )
    updates = {"kind": "event_updated"}
    assert (
        sample(after, "gateway_events_published_total", **updates)
        - sample(before, "gateway_events_published_total", **updates)
        == 1
    )
    assert str(event.id) not in after


# --- OpenAPI ------------------------------------------------------------------------------


def test_the_openapi_document_describes_the_contract(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]

    def statuses(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert {(p, m) for p, ops in paths.items() for m in ops} == {
        ("/events", "post"),
        ("/events", "get"),
        ("/events/{event_id}", "get"),
        ("/events/{event_id}", "patch"),
        ("/events/{event_id}", "delete"),
        ("/bets", "post"),
        ("/bets", "get"),
        ("/bets/{bet_id}", "get"),
        ("/bets/{bet_id}", "patch"),
        ("/bets/{bet_id}", "delete"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    }
    assert statuses("/events", "post") == {"202", "401", "403", "413", "422", "503"}
    assert statuses("/events/{event_id}", "patch") == {
        "202", "401", "403", "404", "409", "413", "422", "503"
    }  # fmt: skip
    assert statuses("/events/{event_id}", "delete") == {
        "204", "401", "403", "404", "409", "422", "503"
    }  # fmt: skip
    assert statuses("/bets", "post") == {"201", "401", "403", "404", "409", "413", "422", "503"}
    assert statuses("/bets/{bet_id}", "patch") == {
        "200", "401", "403", "404", "409", "413", "422", "503"
    }  # fmt: skip
    assert statuses("/readyz", "get") == {"200", "503"}
    assert "Location" in paths["/events"]["post"]["responses"]["202"]["headers"]
    assert "Location" in paths["/bets"]["post"]["responses"]["201"]["headers"]
    created = paths["/bets"]["post"]["responses"]["201"]["content"]["application/json"]
    assert created["schema"]["$ref"].endswith("/BetPublic")
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
    assert client.get("/docs").status_code == 200


def test_the_method_label_takes_only_known_methods(client: TestClient) -> None:
    # Each client-chosen method would otherwise be a new Prometheus series.
    for method in ("FROBNICATE", "X-" + uuid.uuid4().hex, "get"):
        client.request(method, "/healthz")

    text = client.get("/metrics").text

    methods = {
        series.labels["method"]
        for family in text_string_to_metric_families(text)
        for series in family.samples
        if series.name == "gateway_requests_total"
    }
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert sample(text, "gateway_requests_total", method="other", route="/healthz", status="405")
