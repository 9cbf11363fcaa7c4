"""One set of BETTING_KAFKA_* settings reaches a secured broker from every Kafka client: the line
provider's producer, the functions' Quix consumer and producer, and setup's admin client.

The local broker (tansu 0.6) speaks SCRAM but cannot have a user added while it requires
authentication (memory storage only), so this is proven by each client's rendered
configuration, built from the settings the way the running component builds it.
"""

import asyncio
import contextlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from betting import setup, topics
from betting.kafka import client_config
from betting.settings import Settings, get_settings

SECURED = {
    "BETTING_KAFKA_BROKERS": "kafka-0.example.internal:9093,kafka-1.example.internal:9093",
    "BETTING_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "BETTING_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
    "BETTING_KAFKA_SASL_USERNAME": "betting",
    # Spaces, a percent sign and a plus: passed through untouched, never URL-encoded.
    "BETTING_KAFKA_SASL_PASSWORD": "pass word+%20 x",
    "BETTING_KAFKA_CA_FILE": "/etc/betting/kafka-ca/ca.crt",
}
EXPECTED = {
    "bootstrap.servers": "kafka-0.example.internal:9093,kafka-1.example.internal:9093",
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-256",
    "sasl.username": "betting",
    "sasl.password": "pass word+%20 x",
    "ssl.ca.location": "/etc/betting/kafka-ca/ca.crt",
}


@pytest.fixture
def secured(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's settings (get_settings) are those of a secured broker for one test."""
    get_settings.cache_clear()
    for name, value in SECURED.items():
        monkeypatch.setenv(name, value)
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _security(config: dict[str, Any]) -> dict[str, Any]:
    """The connection part of a librdkafka configuration, protocol in capitals."""
    found = {key: config[key] for key in EXPECTED if key in config}
    found["security.protocol"] = str(found["security.protocol"]).upper()
    return found


class Recorder:
    """Stands in for a confluent-kafka client: keeps the configuration it was given."""

    configs: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, config: dict[str, Any]) -> None:
        Recorder.configs.append(dict(config))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0

    def list_topics(self, timeout: float) -> Any:
        """Every topic exists with the configured partition count."""
        partitions = dict.fromkeys(range(topics.shape().partitions))
        one = SimpleNamespace(error=None, partitions=partitions)
        return SimpleNamespace(topics=dict.fromkeys(topics.ALL_TOPICS, one))

    def describe_topics(self, names: Any, request_timeout: float) -> dict[str, Any]:
        """Every topic has the same id."""
        found = SimpleNamespace(result=lambda timeout: SimpleNamespace(topic_id="same-id"))
        return {name: found for name in names.topic_names}


@pytest.fixture
def recorder() -> Iterator[type[Recorder]]:
    Recorder.configs = []
    yield Recorder
    Recorder.configs = []


def test_the_local_default_is_plaintext_with_nothing_secret() -> None:
    # Only the address is given: the test session may have set BETTING_KAFKA_BROKERS.
    assert client_config(Settings(kafka_brokers="127.0.0.1:9092")) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "PLAINTEXT",
    }


@pytest.mark.usefixtures("secured")
def test_the_settings_render_one_complete_sasl_ssl_configuration() -> None:
    assert client_config(get_settings()) == EXPECTED


@pytest.mark.usefixtures("secured")
def test_the_password_never_shows_in_the_settings_repr() -> None:
    assert SECURED["BETTING_KAFKA_SASL_PASSWORD"] not in repr(get_settings())


def test_tls_without_sasl_takes_the_ca_file_and_no_credentials() -> None:
    settings = Settings(
        kafka_brokers="127.0.0.1:9092", kafka_security_protocol="SSL", kafka_ca_file="/ca.pem"
    )
    assert client_config(settings) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "SSL",
        "ssl.ca.location": "/ca.pem",
    }


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "BETTING_KAFKA_SASL_USERNAME"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u"},
            "BETTING_KAFKA_SASL_PASSWORD",
        ),
        ({"kafka_ca_file": "/ca.pem"}, "BETTING_KAFKA_CA_FILE is only used with TLS"),
    ],
    ids=["sasl without user", "sasl without password", "a CA file without TLS"],
)
def test_a_half_configured_secured_broker_is_refused_at_start(
    settings: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate(settings)


@pytest.mark.usefixtures("secured")
def test_the_line_providers_producer_is_built_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, recorder: type[Recorder]
) -> None:
    from gateway import line_provider, producer

    monkeypatch.setattr(producer, "Producer", recorder)
    monkeypatch.setattr(topics, "AdminClient", recorder)

    async def open_and_close() -> None:
        async with line_provider.lifespan(FastAPI()):
            pass

    asyncio.run(open_and_close())
    [topic_check, config] = recorder.configs
    assert _security(topic_check) == EXPECTED  # the check of its topic at start
    assert _security(config) == EXPECTED
    assert config["acks"] == "all"  # its own settings stay on top of the connection


@pytest.mark.usefixtures("secured")
def test_the_functions_consumer_and_producer_are_built_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, recorder: type[Recorder]
) -> None:
    from betting import log_watch
    from betting.streams import build_app

    monkeypatch.setattr(topics, "AdminClient", recorder)
    app = build_app(topics.GROUPS.event_writer, uses=[topics.EVENTS])
    log_watch.stop()
    # The check of its topics at start, and the client that watches their incarnations.
    [topic_check, watch] = recorder.configs
    assert _security(topic_check) == EXPECTED
    assert _security(watch) == EXPECTED
    assert _security(app.get_consumer()._consumer_config) == EXPECTED
    assert _security(app.get_producer()._producer_config) == EXPECTED


@pytest.mark.usefixtures("secured")
def test_setups_admin_client_is_built_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, recorder: type[Recorder]
) -> None:
    monkeypatch.setattr(setup, "migrate", lambda: None)
    monkeypatch.setattr(topics, "AdminClient", recorder)
    # The stored incarnations are the database's business, not this test's.
    monkeypatch.setattr(setup, "session_scope", contextlib.nullcontext)
    monkeypatch.setattr(setup, "adopt", lambda *args, **kwargs: False)

    assert setup.prepare() == set()  # every topic exists already: nothing to create
    assert recorder.configs  # the admin clients: listing, checking, describing
    for config in recorder.configs:
        assert _security(config) == EXPECTED
