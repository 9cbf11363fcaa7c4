"""The Helm chart: lint, values documented and covered by the schema, rendering per values file,
hooks, secrets, probes, security, autoscaling."""

import base64
import json
import re
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from sqlalchemy.engine import make_url

from betting import topics
from betting.settings import Settings
from tests.deploy.sources import (
    CHART,
    CI_VALUES,
    NAMESPACE,
    REPO,
    Manifest,
    Rendered,
    chart_source_names,
    pod_spec,
    render_chart,
    source,
    values_of,
    workloads,
)

SERVERS = ("line-provider", "bet-maker")
FUNCTIONS = ("event-writer", "bet-scorer", "bet-writer")
# What each function consumes: the topic its app reads (functions/*/main.py) and its group.
FUNCTION_TOPICS = {
    "event-writer": topics.EVENTS,
    "bet-scorer": topics.EVENTS,
    "bet-writer": topics.BETS,
}
FUNCTION_GROUPS = {name: getattr(topics.GROUPS, name.replace("-", "_")) for name in FUNCTIONS}
# librdkafka reports statistics (and so touches the heartbeat) every 5 s (betting/liveness.py).
STATS_INTERVAL_S = 5


def _component(doc: Manifest) -> str:
    component: str = doc["metadata"]["labels"]["app.kubernetes.io/component"]
    return component


def _env(container: Manifest) -> dict[str, Any]:
    return {
        item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])
    }


CHARTS = chart_source_names()


@pytest.mark.parametrize(
    "values_file", [None, *CI_VALUES], ids=lambda p: p.name if p else "default"
)
def test_helm_lint_reports_no_errors_or_warnings(values_file: Path | None) -> None:
    report = helm_python.lint(CHART, values_of(values_file), strict=True, namespace=NAMESPACE)
    # Severity 1 is information ("icon is recommended"); 2 warnings, 3 errors.
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


def test_every_value_has_a_doc_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    in_list_at = -1  # the indent of the list item we are inside: default data, not keys
    for number, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if line.lstrip().startswith("- "):
            in_list_at = indent if in_list_at < 0 else min(in_list_at, indent)
            continue
        if in_list_at >= 0 and (indent > in_list_at or not line.strip()):
            continue
        in_list_at = -1
        if not re.match(r"^\s*[\w-]+:", line):
            continue
        # The comment block right above the key must start with `# --`.
        above = number - 1
        while above >= 0 and lines[above].strip().startswith("#") and "# --" not in lines[above]:
            above -= 1
        if above < 0 or not lines[above].strip().startswith("# --"):
            undocumented.append(f"values.yaml:{number + 1}: {line.strip()}")
    assert not undocumented, "\n".join(undocumented)


def _schema_paths(schema: dict[str, Any], root: dict[str, Any], prefix: str = "") -> set[str]:
    if "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
    paths = set()
    for key, sub in schema.get("properties", {}).items():
        paths.add(prefix + key)
        paths |= _schema_paths(sub, root, f"{prefix}{key}.")
    return paths


def _value_paths(values: Any, prefix: str = "") -> set[str]:
    if not isinstance(values, dict):
        return set()
    paths = set()
    for key, value in values.items():
        paths.add(prefix + key)
        paths |= _value_paths(value, f"{prefix}{key}.")
    return paths


def _objects(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = [schema] if schema.get("type") == "object" and "properties" in schema else []
    for value in schema.values():
        if isinstance(value, dict):
            found += _objects(value)
    return found


def test_schema_covers_every_value_and_nothing_else() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    # Maps of the user's own (extraEnv, podAnnotations, ...) have no fixed keys; all else does.
    in_schema, in_values = _schema_paths(schema, schema), _value_paths(values)
    assert in_values - in_schema == set(), "values without a schema"
    assert in_schema - in_values == set(), "schema properties without a default value"
    loose = [
        sorted(o["properties"])
        for o in _objects(schema)
        if o.get("additionalProperties") is not False
    ]
    assert not loose, f"objects that accept unknown keys: {loose}"


@pytest.mark.parametrize(
    "bad",
    [
        {"functions": {"bet-writer": {"autoscaling": {"maxReplicas": topics.PARTITIONS + 1}}}},
        {"functions": {"bet-writer": {"replicas": topics.PARTITIONS + 1}}},
        {"functions": {"bet-scorer": {"autoscaling": {"mode": "hpa", "minReplicas": 0}}}},
        {"functions": {"event-writer": {"autoscaling": {"mode": "keda+hpa"}}}},
        {"functions": {"not-a-command": {}}},
        {"servers": {"bet-maker": {"autoscaling": {"mode": "keda"}}}},
        {"servers": {"gateway": {}}},
        {"servers": {"line-provider": {"port": 80}}},
        {"ingress": {"enabled": "yes"}},
        {"gateway": {"replicas": 2}},
        {"extraEnv": {"BETTING_DATABASE_URL": "set twice"}},
        {"extraEnv": {"PYTHONPATH": "not a setting"}},
        {"securityContext": {"readOnlyRootFilesystem": False}},
        {"podSecurityContext": {"runAsNonRoot": False}},
        {"kafka": {"brokers": "no-port"}},
        {"databse": {"host": "typo"}},
    ],
    ids=lambda bad: json.dumps(bad, separators=(",", ":")),
)
def test_schema_refuses_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(helm_python.HelmValuesError):
        render_chart(bad)


@pytest.mark.parametrize(("kind", "name"), [("functions", "bet-writer"), ("servers", "bet-maker")])
def test_min_above_max_replicas_is_refused(kind: str, name: str) -> None:
    bad = {kind: {name: {"autoscaling": {"mode": "hpa", "minReplicas": 3, "maxReplicas": 2}}}}
    with pytest.raises(helm_python.HelmRenderError, match="minReplicas is above maxReplicas"):
        render_chart(bad)


@pytest.mark.parametrize("name", CHARTS)
@pytest.mark.parametrize(
    ("template", "components"), [("functions.yaml", FUNCTIONS), ("servers.yaml", SERVERS)]
)
def test_the_functions_and_the_servers_each_come_from_one_template(
    name: str, template: str, components: tuple[str, ...]
) -> None:
    rendered = source(name)
    for path, docs in rendered.by_template.items():
        found = {_component(d) for d in docs if d["kind"] == "Deployment"}
        if found & set(components):
            assert path.endswith(f"templates/{template}")
            assert found == set(components)


def test_the_servers_scale_apart() -> None:
    """By default the bet maker (the players' peaks) scales on CPU; the line provider (the
    operators' steady load) keeps its own replica count."""
    rendered = source("chart-default")
    deployments = {
        _component(d): d
        for d in rendered.documents
        if d["kind"] == "Deployment" and _component(d) in SERVERS
    }
    autoscalers = _autoscalers(rendered)
    assert deployments["line-provider"]["spec"]["replicas"] == 2
    assert "betting-line-provider" not in autoscalers
    (hpa,) = autoscalers["betting-bet-maker"]
    assert hpa["kind"] == "HorizontalPodAutoscaler"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in deployments["bet-maker"]["spec"]


@pytest.mark.parametrize("name", CHARTS)
def test_each_server_listens_on_the_port_its_setting_names(name: str) -> None:
    for deployment in (d for d in source(name).documents if d["kind"] == "Deployment"):
        component = _component(deployment)
        if component not in SERVERS:
            continue
        container = pod_spec(deployment)["containers"][0]
        assert container["args"] == [component]
        (port,) = container["ports"]
        setting = f"BETTING_{component.upper().replace('-', '_')}_PORT"
        assert (port["name"], str(port["containerPort"])) == ("http", _env(container)[setting])


@pytest.mark.parametrize("name", CHARTS)
def test_migrations_then_topics_run_as_hooks_before_install_and_upgrade(name: str) -> None:
    rendered = source(name)
    jobs = {_component(j): j for j in rendered.documents if j["kind"] == "Job"}
    assert set(jobs) == {"migrate", "topics"}
    weights = {}
    for component, job in jobs.items():
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        weights[component] = int(annotations["helm.sh/hook-weight"])
    assert jobs["migrate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert jobs["topics"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["setup"]
    assert weights["migrate"] < weights["topics"]
    # The hooks read the chart's Secret, so it must exist before them: a hook of lower weight.
    for secret in (d for d in rendered.documents if d["kind"] == "Secret"):
        annotations = secret["metadata"]["annotations"]
        assert "pre-install" in annotations["helm.sh/hook"]
        assert int(annotations["helm.sh/hook-weight"]) < weights["migrate"]


def _secret_refs(rendered: Rendered) -> set[tuple[str, str, str]]:
    refs = set()
    for workload in workloads(rendered):
        for container in pod_spec(workload)["containers"]:
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((item["name"], ref["name"], ref["key"]))
    return refs


def test_existing_secrets_replace_the_charts_secret() -> None:
    rendered = source("chart-existing-secrets")
    assert [d for d in rendered.documents if d["kind"] == "Secret"] == []
    assert _secret_refs(rendered) == {
        ("BETTING_DATABASE_URL", "betting-database", "url"),
        ("BETTING_AUTH_SECRET", "betting-auth", "hs256-key"),
    }


def test_the_charts_secret_holds_what_the_containers_read() -> None:
    rendered = source("chart-default")
    (secret,) = [d for d in rendered.documents if d["kind"] == "Secret"]
    for _, name, key in _secret_refs(rendered):
        assert name == secret["metadata"]["name"]
        assert key in secret["data"]


def test_an_external_database_and_broker_are_reached_by_address() -> None:
    rendered = source("chart-external-services")
    (secret,) = [d for d in rendered.documents if d["kind"] == "Secret"]
    url = make_url(base64.b64decode(secret["data"]["database-url"]).decode())
    assert (url.drivername, url.host, url.port, url.database, url.username, url.password) == (
        "postgresql+psycopg2", "db.example.internal", 6432, "betting_prod", "betting_app",
        "s3cret/with@special:chars",
    )  # fmt: skip
    values = values_of(REPO / "helm" / "ci" / "external-services.yaml")
    assert values is not None
    for workload in workloads(rendered):
        env = _env(pod_spec(workload)["containers"][0])
        # The broker's clients have its address (test_commands: and no other component).
        if "BETTING_KAFKA_BROKERS" in env:
            assert env["BETTING_KAFKA_BROKERS"] == values["kafka"]["brokers"]
    egress = {
        d["metadata"]["name"]: d["spec"].get("egress")
        for d in rendered.documents
        if d["kind"] == "NetworkPolicy"
    }
    assert egress["betting-database-egress"] == [
        {
            "ports": [{"protocol": "TCP", "port": 6432}],
            "to": [{"ipBlock": {"cidr": "10.20.0.0/24"}}],
        }
    ]
    assert egress["betting-broker-egress"] == [
        {
            "ports": [{"protocol": "TCP", "port": 9093}],
            "to": [{"ipBlock": {"cidr": "10.30.0.0/24"}}],
        }
    ]


def _autoscalers(rendered: Rendered) -> dict[str, list[Manifest]]:
    by_target: dict[str, list[Manifest]] = {}
    for doc in rendered.documents:
        if doc["kind"] in {"ScaledObject", "HorizontalPodAutoscaler"}:
            by_target.setdefault(doc["spec"]["scaleTargetRef"]["name"], []).append(doc)
    return by_target


@pytest.mark.parametrize("name", CHARTS)
def test_one_autoscaler_at_most_per_deployment_and_it_owns_the_replicas(name: str) -> None:
    rendered = source(name)
    autoscalers = _autoscalers(rendered)
    deployments = {
        d["metadata"]["name"]: d for d in rendered.documents if d["kind"] == "Deployment"
    }
    assert set(autoscalers) <= set(deployments)
    for deployment_name, deployment in deployments.items():
        scalers = autoscalers.get(deployment_name, [])
        assert len(scalers) <= 1, f"{deployment_name} has {[s['kind'] for s in scalers]}"
        # A fixed replica count would fight the autoscaler at every `helm upgrade`.
        assert ("replicas" in deployment["spec"]) == (not scalers)


def _function_deployments(rendered: Rendered) -> dict[str, Manifest]:
    return {
        _component(d): d
        for d in rendered.documents
        if d["kind"] == "Deployment" and _component(d) in FUNCTIONS
    }


@pytest.mark.parametrize("name", CHARTS)
def test_functions_scale_on_their_own_group_and_topic_up_to_the_partition_count(name: str) -> None:
    rendered = source(name)
    functions = _function_deployments(rendered)
    assert set(functions) == set(FUNCTIONS)
    autoscalers = _autoscalers(rendered)
    for component, deployment in functions.items():
        container = pod_spec(deployment)["containers"][0]
        assert container["args"] == [component]
        env = _env(container)
        for scaler in autoscalers.get(deployment["metadata"]["name"], []):
            if scaler["kind"] == "HorizontalPodAutoscaler":
                assert 1 <= scaler["spec"]["minReplicas"] <= scaler["spec"]["maxReplicas"]
                assert scaler["spec"]["maxReplicas"] <= topics.PARTITIONS
                continue
            spec = scaler["spec"]
            assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= topics.PARTITIONS
            (trigger,) = spec["triggers"]
            assert trigger["type"] == "kafka"
            meta = trigger["metadata"]
            assert (
                meta["consumerGroup"]
                == FUNCTION_GROUPS[component] + env["BETTING_CONSUMER_GROUP_SUFFIX"]
            )
            assert meta["topic"] == FUNCTION_TOPICS[component]
            assert meta["bootstrapServers"] == env["BETTING_KAFKA_BROKERS"]
            assert int(meta["lagThreshold"]) > 0
            # Quix starts a new group from the beginning (auto_offset_reset="earliest").
            assert meta["offsetResetPolicy"] == "earliest"


def test_scale_to_zero_is_keda_with_no_minimum() -> None:
    rendered = source("chart-scale-to-zero")
    scaled = [d for d in rendered.documents if d["kind"] == "ScaledObject"]
    assert len(scaled) == len(FUNCTIONS)
    assert all(s["spec"]["minReplicaCount"] == 0 for s in scaled)
    hpas = [d for d in rendered.documents if d["kind"] == "HorizontalPodAutoscaler"]
    assert [h["metadata"]["name"] for h in hpas] == ["betting-bet-maker"]


def test_each_autoscaling_mode_renders_what_it_names() -> None:
    hpa, keda = "HorizontalPodAutoscaler", "ScaledObject"
    # The bet maker's CPU HPA is there unless a file turns it off (autoscaling-none).
    expected = {
        "chart-default": {"bet-maker": hpa},
        "chart-autoscaling-none": {},
        "chart-autoscaling-keda": {"bet-maker": hpa, **dict.fromkeys(FUNCTIONS, keda)},
        "chart-autoscaling-hpa": dict.fromkeys([*SERVERS, *FUNCTIONS], hpa),
        "chart-mixed-modes": {"bet-maker": hpa, "event-writer": keda, "bet-scorer": hpa},
    }
    for name, kinds in expected.items():
        found = {
            target.removeprefix("betting-"): scaler["kind"]
            for target, scalers in _autoscalers(source(name)).items()
            for scaler in scalers
        }
        assert found == kinds, name


@pytest.mark.parametrize("name", CHARTS)
def test_probes_servers_over_http_functions_by_their_heartbeat(name: str) -> None:
    rendered = source(name)
    for deployment in (d for d in rendered.documents if d["kind"] == "Deployment"):
        container = pod_spec(deployment)["containers"][0]
        component = _component(deployment)
        if component in SERVERS:
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            continue
        env = _env(container)
        assert env["BETTING_HEARTBEAT_FILE"].startswith("/tmp/")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            command = container[probe]["exec"]["command"]
            assert command[:3] == ["betting", "probe", "--max-age"]
        max_age = float(container["livenessProbe"]["exec"]["command"][3])
        assert max_age > 2 * STATS_INTERVAL_S
        if component == "bet-scorer":
            # The scorer does not poll while it waits for the event writer: allow for the wait.
            wait = float(
                env.get("BETTING_SCORER_WAIT_TIMEOUT_S") or Settings().scorer_wait_timeout_s
            )
            assert max_age > wait + STATS_INTERVAL_S


@pytest.mark.parametrize("name", CHARTS)
def test_functions_have_time_to_flush_and_room_for_state(name: str) -> None:
    for component, deployment in _function_deployments(source(name)).items():
        spec = pod_spec(deployment)
        assert spec["terminationGracePeriodSeconds"] >= 60, component
        mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        for path in ("/tmp", "/app/state"):
            assert "emptyDir" in volumes[mounts[path]], (component, path)


def test_notes_render() -> None:
    notes = render_chart(None)["betting/templates/NOTES.txt"]
    assert "port-forward svc/betting-line-provider 8001:8000" in notes
    assert "port-forward svc/betting-bet-maker 8002:8000" in notes
