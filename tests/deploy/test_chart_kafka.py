"""The chart's way to the broker: security from Secrets for every client and for KEDA,
production timeouts, an address that follows the release's namespace; and a database URL that
survives any password."""

import base64
from typing import Any

import helm_python
import pytest
import yaml
from sqlalchemy.engine import make_url

from betting.kafka import client_config
from betting.settings import Settings
from tests.deploy.sources import (
    REPO,
    Manifest,
    Rendered,
    chart,
    pod_spec,
    render_chart,
    source,
    values_of,
    workloads,
)

BROKER_CLIENTS = {"line-provider", "topics", "event-writer", "bet-scorer", "bet-writer"}
SECURED = values_of(REPO / "helm" / "ci" / "secured-kafka.yaml") or {}


def _component(doc: Manifest) -> str:
    component: str = doc["metadata"]["labels"]["app.kubernetes.io/component"]
    return component


def _containers(rendered: Rendered) -> dict[str, tuple[Manifest, Manifest]]:
    """component → (pod spec, its container)."""
    found = {}
    for workload in workloads(rendered):
        spec = pod_spec(workload)
        found[_component(workload)] = (spec, spec["containers"][0])
    return found


def _env(container: Manifest) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def _secret_value(ref: dict[str, Any]) -> str:
    """A stand-in for what Kubernetes would put in the variable: which Secret key it is."""
    key = ref["secretKeyRef"]
    return f"{key['name']}/{key['key']}"


def test_every_broker_client_and_only_those_reach_the_secured_broker_the_same_way() -> None:
    rendered = source("chart-secured-kafka")
    containers = _containers(rendered)
    assert set(containers) > BROKER_CLIENTS
    tls = SECURED["kafka"]["tls"]
    for component, (spec, container) in containers.items():
        env = _env(container)
        if component not in BROKER_CLIENTS:
            assert not [name for name in env if name.startswith("BETTING_KAFKA_")], component
            assert "kafka-ca" not in {v["name"] for v in spec["volumes"]}, component
            continue
        settings = Settings.model_validate(
            {
                name.removeprefix("BETTING_").lower(): (
                    value if isinstance(value, str) else _secret_value(value)
                )
                for name, value in env.items()
                if name.startswith("BETTING_KAFKA_")
            }
        )
        assert client_config(settings) == {
            "bootstrap.servers": SECURED["kafka"]["brokers"],
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": "betting-kafka/username",
            "sasl.password": "betting-kafka/password",
            "ssl.ca.location": f"/etc/betting/kafka-ca/{tls['caKey']}",
        }, component
        # The CA file is there: the Secret's key, mounted read-only where the setting points.
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "kafka-ca"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == "kafka-ca"]
        assert mount["readOnly"] is True
        assert volume["secret"]["secretName"] == tls["caSecret"]
        (item,) = volume["secret"]["items"]
        assert f"{mount['mountPath']}/{item['path']}" == settings.kafka_ca_file
        assert item["key"] == tls["caKey"]


def test_keda_authenticates_with_the_same_secrets_as_the_functions() -> None:
    documents = source("chart-secured-kafka").documents
    (auth,) = [d for d in documents if d["kind"] == "TriggerAuthentication"]
    targets = {t["parameter"]: (t["name"], t["key"]) for t in auth["spec"]["secretTargetRef"]}
    assert targets == {
        "username": ("betting-kafka", "username"),
        "password": ("betting-kafka", "password"),
        "ca": ("redpanda-default-cert", "ca.crt"),
    }
    scaled = [d for d in documents if d["kind"] == "ScaledObject"]
    assert len(scaled) == 3
    for scaled_object in scaled:
        (trigger,) = scaled_object["spec"]["triggers"]
        assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
        assert trigger["metadata"]["sasl"] == "scram_sha256"
        assert trigger["metadata"]["tls"] == "enable"
        assert trigger["metadata"]["bootstrapServers"] == SECURED["kafka"]["brokers"]


def test_a_plaintext_broker_needs_no_credentials_and_keda_no_authentication() -> None:
    documents = source("chart-autoscaling-keda").documents
    assert not [d for d in documents if d["kind"] == "TriggerAuthentication"]
    for scaled_object in (d for d in documents if d["kind"] == "ScaledObject"):
        (trigger,) = scaled_object["spec"]["triggers"]
        assert "authenticationRef" not in trigger
        assert trigger["metadata"]["tls"] == "disable"
        assert "sasl" not in trigger["metadata"]
    for _, container in _containers(source("chart-autoscaling-keda")).values():
        env = _env(container)
        assert env.get("BETTING_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT") == "PLAINTEXT"
        assert not {"BETTING_KAFKA_SASL_PASSWORD", "BETTING_KAFKA_CA_FILE"} & set(env)


@pytest.mark.parametrize(
    ("kafka", "message"),
    [
        ({"securityProtocol": "SASL_SSL"}, "needs kafka.sasl.existingSecret"),
        ({"tls": {"caSecret": "ca"}}, "kafka.tls.caSecret is only used with TLS"),
    ],
    ids=["sasl without a secret", "a CA without TLS"],
)
def test_a_half_configured_secured_broker_does_not_render(
    kafka: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=message):
        render_chart({"kafka": kafka})


def test_the_chart_defaults_to_production_timeouts_above_the_scorers_wait() -> None:
    for component, (_, container) in _containers(source("chart-default")).items():
        if component not in BROKER_CLIENTS:
            continue
        env = _env(container)
        settings = Settings.model_validate(
            {n.removeprefix("BETTING_").lower(): v for n, v in env.items() if isinstance(v, str)}
        )
        local = Settings()
        assert settings.kafka_session_timeout_ms == 45_000 > local.kafka_session_timeout_ms
        assert settings.kafka_heartbeat_interval_ms * 3 <= settings.kafka_session_timeout_ms
        assert settings.kafka_max_poll_interval_ms > settings.scorer_wait_timeout_s * 1000
        assert settings.kafka_fetch_wait_max_ms == 500 > local.kafka_fetch_wait_max_ms


def test_the_default_broker_address_follows_the_release_namespace() -> None:
    values = {"auth": {"existingSecret": "betting-auth"}}
    rendered = chart().render(values, name="bets", namespace="sportsbook", is_install=True)
    text = "\n".join(rendered.values())
    assert "redpanda.sportsbook.svc.cluster.local:9092" in text
    assert ".betting.svc" not in text
    # The dev Redpanda advertises the address in whatever namespace it runs.
    redpanda = (REPO / "k8s" / "dev-services" / "redpanda.yaml").read_text()
    assert "redpanda.$(POD_NAMESPACE).svc.cluster.local:9092" in redpanda
    assert ".betting.svc" not in redpanda


@pytest.mark.parametrize("password", ["pass word", "a+b c%20d", "s3cret/with@special:chars"])
def test_any_database_password_survives_the_url(password: str) -> None:
    rendered = render_chart({"database": {"password": password, "user": "app user"}})
    manifests = [text for name, text in rendered.items() if not name.endswith("NOTES.txt")]
    documents = [doc for text in manifests for doc in yaml.safe_load_all(text) if doc]
    (secret,) = [doc for doc in documents if doc.get("kind") == "Secret"]
    url = make_url(base64.b64decode(secret["data"]["database-url"]).decode())
    assert (url.username, url.password) == ("app user", password)
