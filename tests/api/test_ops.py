"""What both servers share, each tested alone: tokens, probes, metrics, the OpenAPI document, and
what happens when a dependency is down."""

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine

from betting.auth import ALGORITHM, Role, mint_token
from betting.models import Event
from betting.settings import get_settings
from gateway import bet_maker, line_provider
from gateway.deps import current_engine
from gateway.producer import EventPublisher, get_publisher
from launcher.local import free_port
from tests.api.conftest import Caller, soon

SERVERS = ("line_provider", "bet_maker")
APPS = {"line_provider": line_provider.app, "bet_maker": bet_maker.app}
# A call of each server that needs a token and no body.
GUARDED = {"line_provider": ("DELETE", f"/events/{uuid.uuid4()}"), "bet_maker": ("GET", "/bets")}


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> tuple[str, TestClient]:
    """Each server in turn: its name and a client of it alone."""
    name: str = request.param
    return name, request.getfixturevalue(name)


def signed(claims: dict[str, Any], secret: str | None = None) -> dict[str, str]:
    token = jwt.encode(claims, secret or get_settings().auth_secret, algorithm=ALGORITHM)
    return {"Authorization": f"Bearer {token}"}


# --- Tokens -------------------------------------------------------------------------------


def test_bad_tokens_are_401_with_a_bearer_challenge(server: tuple[str, TestClient]) -> None:
    name, client = server
    method, path = GUARDED[name]
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

    answers = {what: client.request(method, path, headers=headers) for what, headers in bad.items()}

    assert {what: r.status_code for what, r in answers.items()} == dict.fromkeys(bad, 401)
    assert all(r.headers["www-authenticate"] == "Bearer" for r in answers.values())
    # One fixed answer: the library's reasons (which claim, which check) help an attacker only.
    details = {name: r.json()["detail"] for name, r in answers.items()}
    assert details == {
        **dict.fromkeys(bad, "invalid or expired token"),
        "basic": "not authenticated",
    }


def test_the_role_comes_from_the_token(bet_maker: TestClient) -> None:
    hour = datetime.now(UTC) + timedelta(hours=1)

    response = bet_maker.get("/bets", headers=signed({"sub": "o", "role": "operator", "exp": hour}))

    assert response.status_code == 200


# --- Probes -------------------------------------------------------------------------------


def test_healthz_says_ok(server: tuple[str, TestClient]) -> None:
    response = server[1].get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_is_ok_when_what_the_server_needs_answers(server: tuple[str, TestClient]) -> None:
    response = server[1].get("/readyz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_each_server_is_ready_on_what_it_needs_only() -> None:
    """The line provider needs the database and the broker; the bet maker only the database."""
    ready = {
        name: app.openapi()["paths"]["/readyz"]["get"]["description"] for name, app in APPS.items()
    }
    assert ready == {
        "line_provider": "The database and the broker are reachable.",
        "bet_maker": "The database is reachable.",
    }


@contextmanager
def overridden(app: FastAPI, dependency: Callable[..., Any], value: Any) -> Iterator[None]:
    """`app` gets `value` wherever it depends on `dependency`, for the `with` block."""
    app.dependency_overrides[dependency] = lambda: value
    try:
        yield
    finally:
        del app.dependency_overrides[dependency]


@pytest.fixture
def database_down() -> Iterator[Engine]:
    """An engine pointing at a port where no database listens."""
    engine = create_engine(
        f"postgresql+psycopg2://nobody@127.0.0.1:{free_port()}/nothing",
        connect_args={"connect_timeout": 1},
    )
    yield engine
    engine.dispose()


@pytest.fixture
def broker_down() -> Iterator[None]:
    """The line provider's producer points at a port where no broker listens."""
    publisher = EventPublisher({"bootstrap.servers": f"127.0.0.1:{free_port()}"}, timeout_s=1.0)
    with overridden(line_provider.app, get_publisher, publisher):
        yield
    publisher.close(timeout_s=0)


def test_without_the_database_readyz_and_reads_are_503(
    server: tuple[str, TestClient], database_down: Engine, player: Caller
) -> None:
    name, client = server
    read = {"line_provider": "/events", "bet_maker": "/bets"}[name]
    with overridden(APPS[name], current_engine, database_down):
        ready = client.get("/readyz")
        answer = client.get(read, headers=player.headers)

    assert (ready.status_code, ready.json()) == (503, {"detail": "unavailable: database"})
    assert (answer.status_code, answer.json()) == (503, {"detail": "the database is unavailable"})


def test_without_the_database_placing_a_bet_is_503(
    database_down: Engine, player: Caller, request: pytest.FixtureRequest
) -> None:
    """Placement's asynchronous connections (no worker thread) answer an outage as 503 too."""
    client: TestClient = request.getfixturevalue("bet_maker")
    body = {"event_id": str(uuid.uuid4()), "market": "draw", "amount": "1.00"}
    with overridden(bet_maker.app, current_engine, database_down):
        answer = client.post("/bets", json=body, headers=player.headers)

    assert (answer.status_code, answer.json()) == (503, {"detail": "the database is unavailable"})


@pytest.mark.usefixtures("broker_down")
def test_without_the_broker_the_line_providers_readyz_and_event_writes_are_503(
    line_provider: TestClient, operator: Caller, make_event: Callable[..., Event]
) -> None:
    client = line_provider
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


def test_metrics_count_requests_by_route_template_and_events_published(
    line_provider: TestClient, operator: Caller, make_event: Callable[..., Event]
) -> None:
    client = line_provider
    route = {"method": "GET", "route": "/events/{event_id}", "status": "200"}
    before = client.get("/metrics").text
    event = make_event()
    client.get(f"/events/{event.id}")
    client.get(f"/events/{event.id}")
    odds = {"team_1": "1.50", "team_2": "2.50", "draw": "3.50"}
    client.patch(f"/events/{event.id}", json={"odds": odds}, headers=operator.headers)

    response = client.get("/metrics")

    after = response.text
    assert response.headers["content-type"].startswith("text/plain")
    requests = sample(after, "gateway_requests_total", **route)
    assert requests - sample(before, "gateway_requests_total", **route) == 2
    assert sample(after, "gateway_request_duration_seconds_count", **route) >= 2
    updates = {"kind": "event_updated"}
    assert (
        sample(after, "gateway_events_published_total", **updates)
        - sample(before, "gateway_events_published_total", **updates)
        == 1
    )
    assert str(event.id) not in after


def test_the_bet_makers_metrics_count_bets_placed(
    bet_maker: TestClient, make_bet: Callable[..., dict[str, Any]]
) -> None:
    route = {"method": "POST", "route": "/bets", "status": "201"}
    before = bet_maker.get("/metrics").text
    bet = make_bet()

    after = bet_maker.get("/metrics").text

    for counter, labels in (("gateway_bets_placed_total", {}), ("gateway_requests_total", route)):
        assert sample(after, counter, **labels) - sample(before, counter, **labels) == 1
    assert bet["id"] not in after


# --- OpenAPI ------------------------------------------------------------------------------

OPERATIONS = {("/healthz", "get"), ("/readyz", "get"), ("/metrics", "get")}


def calls(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, operations in spec["paths"].items() for method in operations}


def statuses(spec: dict[str, Any], path: str, method: str) -> set[str]:
    return set(spec["paths"][path][method]["responses"])


def test_the_line_providers_openapi_document_has_only_its_calls(line_provider: TestClient) -> None:
    spec = line_provider.get("/openapi.json").json()

    assert spec["info"]["title"] == "Line provider"
    assert calls(spec) == OPERATIONS | {
        ("/events", "post"),
        ("/events", "get"),
        ("/events/{event_id}", "get"),
        ("/events/{event_id}", "patch"),
        ("/events/{event_id}", "delete"),
        ("/events/{event_id}/book", "get"),
    }
    assert statuses(spec, "/events", "post") == {"202", "401", "403", "413", "422", "503"}
    assert statuses(spec, "/events/{event_id}", "patch") == {
        "202", "401", "403", "404", "409", "413", "422", "503"
    }  # fmt: skip
    assert statuses(spec, "/events/{event_id}", "delete") == {
        "204", "401", "403", "404", "409", "422", "503"
    }  # fmt: skip
    assert statuses(spec, "/events/{event_id}/book", "get") == {
        "200", "401", "403", "404", "422", "503"
    }  # fmt: skip
    assert statuses(spec, "/readyz", "get") == {"200", "503"}
    assert "Location" in spec["paths"]["/events"]["post"]["responses"]["202"]["headers"]
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
    assert line_provider.get("/docs").status_code == 200
    assert line_provider.get("/bets").status_code == 404


def test_the_bet_makers_openapi_document_has_only_its_calls(bet_maker: TestClient) -> None:
    spec = bet_maker.get("/openapi.json").json()

    assert spec["info"]["title"] == "Bet maker"
    assert calls(spec) == OPERATIONS | {
        ("/bets", "post"),
        ("/bets", "get"),
        ("/bets/{bet_id}", "get"),
        ("/bets/{bet_id}", "patch"),
        ("/bets/{bet_id}", "delete"),
        ("/bets/stream", "get"),
    }
    assert statuses(spec, "/bets", "post") == {
        "201", "401", "403", "404", "409", "413", "422", "503"
    }  # fmt: skip
    assert statuses(spec, "/bets/{bet_id}", "patch") == {
        "200", "401", "403", "404", "409", "413", "422", "503"
    }  # fmt: skip
    assert statuses(spec, "/bets/stream", "get") == {"200", "401", "422", "503"}
    assert statuses(spec, "/readyz", "get") == {"200", "503"}
    assert "Location" in spec["paths"]["/bets"]["post"]["responses"]["201"]["headers"]
    created = spec["paths"]["/bets"]["post"]["responses"]["201"]["content"]["application/json"]
    assert created["schema"]["$ref"].endswith("/BetPublic")
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
    assert bet_maker.get("/docs").status_code == 200
    assert bet_maker.get("/events").status_code == 404


def test_the_method_label_takes_only_known_methods(server: tuple[str, TestClient]) -> None:
    _, client = server
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
