"""docker-compose.yml: valid by the Compose specification, started in the right order, healthy,
and the broker reachable only by what uses it."""

import json

import jsonschema

from betting import topics
from betting.settings import Settings
from tests.deploy.sources import IMAGE, compose, schemas_dir

SERVERS = ("line-provider", "bet-maker")
FUNCTIONS = ("event-writer", "bet-scorer", "bet-writer")
APP_SERVICES = ("setup", *SERVERS, *FUNCTIONS)


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads((schemas_dir() / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(compose())
    ]
    assert not errors, errors


def test_every_service_of_the_platform_runs_the_one_image() -> None:
    services = compose()["services"]
    assert set(services) == {"redpanda", "postgres", *APP_SERVICES}
    assert {services[name]["image"] for name in APP_SERVICES} == {IMAGE}
    assert {services[name]["build"] for name in APP_SERVICES} == {"."}


def test_setup_waits_for_healthy_servers_and_everything_else_waits_for_setup() -> None:
    services = compose()["services"]
    assert services["setup"]["depends_on"] == {
        "redpanda": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    assert services["setup"]["command"] == ["setup"]
    assert services["setup"]["restart"] == "no"
    for name in (*SERVERS, *FUNCTIONS):
        assert services[name]["depends_on"] == {
            "setup": {"condition": "service_completed_successfully"}
        }, name


def test_the_servers_each_publish_their_own_port_and_are_healthy_when_ready() -> None:
    services = compose()["services"]
    ports = {"line-provider": Settings().line_provider_port, "bet-maker": Settings().bet_maker_port}
    for name, port in ports.items():
        assert services[name]["command"] == [name]
        assert services[name]["ports"] == [f"{port}:{port}"]
        assert f"http://127.0.0.1:{port}/readyz" in " ".join(services[name]["healthcheck"]["test"])


def test_servers_and_functions_have_health_checks() -> None:
    services = compose()["services"]
    assert "rpk cluster health" in " ".join(services["redpanda"]["healthcheck"]["test"])
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    for name in FUNCTIONS:
        assert services[name]["healthcheck"]["test"][1:3] == ["betting", "probe"], name
        assert services[name]["stop_grace_period"] == "60s", name


def test_redpanda_is_a_single_dev_node_and_postgres_is_18() -> None:
    services = compose()["services"]
    command = services["redpanda"]["command"]
    assert command[:2] == ["redpanda", "start"]
    assert "--smp=1" in command
    # dev-container mode turns the broker's topic auto-creation on (DESIGN.md rule 8).
    assert not any(arg.startswith("--mode") for arg in command)
    assert {"--overprovisioned", "--unsafe-bypass-fsync"} <= set(command)
    assert services["postgres"]["image"].split(":")[1].startswith("18")
    # The topics come from `betting setup` with the project's partition count, not from
    # auto-creation: nothing here overrides that.
    assert topics.PARTITIONS == 3


def test_only_the_line_provider_the_functions_and_setup_reach_the_broker() -> None:
    """Like the NetworkPolicies: the bet maker shares no network with the broker, nor has its
    address; everything of the platform shares one with Postgres."""
    services = compose()["services"]
    broker_networks = set(services["redpanda"]["networks"])
    on_broker = {name for name in APP_SERVICES if broker_networks & set(services[name]["networks"])}
    assert on_broker == {"setup", "line-provider", *FUNCTIONS}
    with_address = {
        name for name in APP_SERVICES if "BETTING_KAFKA_BROKERS" in services[name]["environment"]
    }
    assert with_address == on_broker
    database_networks = set(services["postgres"]["networks"])
    assert all(database_networks & set(services[name]["networks"]) for name in APP_SERVICES)
