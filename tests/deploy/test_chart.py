"""The Helm chart: lint, values documented and covered by the schema, rendering per values file,
hooks, secrets, probes, security, autoscaling."""

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    values_file_of,
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
TOPIC_DEFAULTS = {"partitions": 3, "replicationFactor": 1, "retentionMs": 604800000}


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
        {"auth": {"existingSecret": "", "secret": "too-short-for-hs256"}},
        {"topics": {"partitions": 0}},
        {"topics": {"creation": "operator"}},
        {"imageDigest": "latest"},
        {"httpRoute": {"enabled": True, "parentRefs": []}},
        {"metrics": {"prometheusRule": {"enabled": True, "errorRatio": 5}}},
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


@pytest.mark.parametrize(
    "bad",
    [
        {"functions": {"bet-writer": {"autoscaling": {"maxReplicas": topics.PARTITIONS + 1}}}},
        {"functions": {"event-writer": {"replicas": topics.PARTITIONS + 1}}},
        {
            "topics": {"partitions": 2},
            "functions": {"bet-scorer": {"autoscaling": {"mode": "keda", "maxReplicas": 3}}},
        },
    ],
    ids=lambda bad: json.dumps(bad, separators=(",", ":")),
)
def test_a_function_may_not_outnumber_the_topics_partitions(bad: dict[str, Any]) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=r"must not exceed topics\.partitions"):
        render_chart(bad)


def test_more_partitions_allow_more_replicas() -> None:
    rendered = source("chart-topics-external")
    functions = _function_deployments(rendered)
    assert functions["event-writer"]["spec"]["replicas"] == 6
    (scaled,) = [d for d in rendered.documents if d["kind"] == "ScaledObject"]
    assert scaled["spec"]["maxReplicaCount"] == 6


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


@pytest.mark.parametrize("name", [n for n in CHARTS if n != "chart-topics-external"])
def test_migrations_then_topics_run_as_hooks_before_install_and_upgrade(name: str) -> None:
    rendered = source(name)
    jobs = {_component(j): j for j in rendered.documents if j["kind"] == "Job"}
    assert set(jobs) == {"migrate", "topics"}
    weights = {}
    for component, job in jobs.items():
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        # Deleted before it is created again: a changed image never meets an immutable Job.
        assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
        weights[component] = int(annotations["helm.sh/hook-weight"])
    assert pod_spec(jobs["migrate"])["containers"][0]["args"] == ["migrate"]
    topics_job = pod_spec(jobs["topics"])["containers"][0]
    assert topics_job["args"] == ["setup"]
    assert weights["migrate"] < weights["topics"]
    # What the Job creates is what the values say, and what the functions declare.
    values = values_of(values_file_of(name))
    shape = {k: values.get("topics", {}).get(k, v) for k, v in TOPIC_DEFAULTS.items()}
    for env in [_env(topics_job)] + [
        _env(pod_spec(d)["containers"][0]) for d in _function_deployments(rendered).values()
    ]:
        assert env["BETTING_TOPIC_PARTITIONS"] == str(shape["partitions"])
        assert env["BETTING_TOPIC_REPLICATION_FACTOR"] == str(shape["replicationFactor"])
        assert env["BETTING_TOPIC_RETENTION_MS"] == str(shape["retentionMs"])
    # The hooks read the chart's Secret and run as its ServiceAccount: both exist before them.
    for doc in rendered.documents:
        if doc["kind"] in {"Secret", "ServiceAccount"}:
            annotations = doc["metadata"]["annotations"]
            assert "pre-install" in annotations["helm.sh/hook"]
            assert int(annotations["helm.sh/hook-weight"]) < weights["migrate"]


def test_topics_left_to_a_topic_resource_have_no_job() -> None:
    rendered = source("chart-topics-external")
    jobs = [_component(j) for j in rendered.documents if j["kind"] == "Job"]
    assert jobs == ["migrate"]
    for deployment in _function_deployments(rendered).values():
        assert _env(pod_spec(deployment)["containers"][0])["BETTING_TOPIC_PARTITIONS"] == "6"


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
    rendered = source("chart-development-mode")
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
        partitions = int(env["BETTING_TOPIC_PARTITIONS"])
        assert deployment["spec"].get("replicas", 0) <= partitions
        for scaler in autoscalers.get(deployment["metadata"]["name"], []):
            if scaler["kind"] == "HorizontalPodAutoscaler":
                assert 1 <= scaler["spec"]["minReplicas"] <= scaler["spec"]["maxReplicas"]
                assert scaler["spec"]["maxReplicas"] <= partitions
                continue
            spec = scaler["spec"]
            assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
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
        if component == "bet-scorer":
            # SIGTERM may come while the step waits for the event writer; then the checkpoint.
            env = _env(spec["containers"][0])
            wait = float(
                env.get("BETTING_SCORER_WAIT_TIMEOUT_S") or Settings().scorer_wait_timeout_s
            )
            assert spec["terminationGracePeriodSeconds"] > wait + 10
        mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        for path in ("/tmp", "/app/state"):
            assert "emptyDir" in volumes[mounts[path]], (component, path)


def test_notes_render() -> None:
    notes = render_chart({})["betting/templates/NOTES.txt"]
    assert "port-forward svc/betting-line-provider 8001:8000" in notes
    assert "port-forward svc/betting-bet-maker 8002:8000" in notes


# --- secrets a GitOps tool can render ------------------------------------------------------


@pytest.mark.parametrize("name", CHARTS)
def test_every_render_is_the_same(name: str) -> None:
    """No lookup, no random value: `helm template` (Argo CD, Flux) gives the same manifests every
    time, so a sync changes nothing, no token stops working and no pod rolls."""
    values = values_of(values_file_of(name))
    assert render_chart(values) == render_chart(values)


def test_no_template_asks_the_cluster_or_chance() -> None:
    """What makes renders differ: a `lookup` (the cluster's state, empty under `helm template`),
    a random value or the time, in any template action (comments aside)."""
    actions = [
        action
        for path in (CHART / "templates").rglob("*")
        if path.is_file()
        for action in re.findall(r"{{-?\s*([^/*].*?)-?}}", path.read_text(), re.DOTALL)
    ]
    assert len(actions) > 100
    code = [re.sub(r'"[^"]*"', '""', action) for action in actions]  # no string literals
    varying = [a for a in code if re.search(r"\b(lookup|rand\w*|uuidv4|now)\b", a)]
    assert not varying, varying


def test_without_a_key_the_chart_refuses_to_render_and_says_what_to_set() -> None:
    with pytest.raises(helm_python.HelmRenderError) as refused:
        render_chart({}, bare=True)
    message = str(refused.value)
    assert "auth.existingSecret" in message
    assert "auth.secret" in message
    assert "developmentMode" in message


def test_development_mode_uses_the_published_key_and_says_dev_everywhere() -> None:
    rendered = source("chart-development-mode")
    (secret,) = [d for d in rendered.documents if d["kind"] == "Secret"]
    key = base64.b64decode(secret["data"]["auth-secret"]).decode()
    assert "published" in key
    for workload in workloads(rendered):
        for container in pod_spec(workload)["containers"]:
            assert _env(container)["BETTING_ENV"] == "dev", workload["metadata"]["name"]
    # Nowhere else: a production install never runs with BETTING_ENV=dev.
    for name in (n for n in CHARTS if n != "chart-development-mode"):
        for workload in workloads(source(name)):
            assert "BETTING_ENV" not in _env(pod_spec(workload)["containers"][0])


def test_a_given_key_lands_in_the_charts_secret() -> None:
    key = "k" * 40
    rendered = render_chart({"auth": {"secret": key}})
    (secret,) = [d for d in yaml.safe_load_all(rendered["betting/templates/secret.yaml"]) if d]
    assert base64.b64decode(secret["data"]["auth-secret"]).decode() == key


# --- a chart a platform team accepts ---------------------------------------------------------


def test_the_chart_can_be_a_subchart() -> None:
    assert render_chart({"global": {"imageRegistry": "registry.example.internal"}})


@pytest.mark.parametrize("name", CHARTS)
def test_every_pod_runs_as_the_releases_service_account_without_its_token(name: str) -> None:
    rendered = source(name)
    (account,) = [d for d in rendered.documents if d["kind"] == "ServiceAccount"]
    assert account["automountServiceAccountToken"] is False
    for workload in workloads(rendered):
        spec = pod_spec(workload)
        assert spec["serviceAccountName"] == account["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False


def test_image_by_digest_pins_every_container() -> None:
    rendered = source("chart-observability")
    digest = values_of(values_file_of("chart-observability"))["imageDigest"]
    images = {c["image"] for w in workloads(rendered) for c in pod_spec(w)["containers"]}
    assert images == {f"betting@{digest}"}
    # The tag skip is gone with the tag.
    for workload in workloads(rendered):
        assert "CKV_K8S_43" not in json.dumps(workload["metadata"].get("annotations", {}))


@pytest.mark.parametrize("name", CHARTS)
def test_servers_drain_before_they_stop(name: str) -> None:
    for deployment in (d for d in source(name).documents if d["kind"] == "Deployment"):
        if _component(deployment) not in SERVERS:
            continue
        spec = pod_spec(deployment)
        command = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep"
        assert spec["terminationGracePeriodSeconds"] > int(command[1])


def test_a_grace_period_shorter_than_the_longest_wait_is_refused() -> None:
    scorer = {"functions": {"bet-scorer": {"terminationGracePeriodSeconds": 120}}}
    with pytest.raises(helm_python.HelmRenderError, match="must exceed its wait"):
        render_chart(scorer)
    # A shorter wait allows a shorter grace period.
    assert render_chart({**scorer, "extraEnv": {"BETTING_SCORER_WAIT_TIMEOUT_S": "90"}})
    server = {"servers": {"bet-maker": {"terminationGracePeriodSeconds": 5}}}
    with pytest.raises(helm_python.HelmRenderError, match=r"must exceed preStopSeconds"):
        render_chart(server)


@pytest.mark.parametrize("name", CHARTS)
def test_readiness_has_a_grace_window_and_liveness_checks_the_process(name: str) -> None:
    for deployment in (d for d in source(name).documents if d["kind"] == "Deployment"):
        if _component(deployment) not in SERVERS:
            continue
        container = pod_spec(deployment)["containers"][0]
        assert float(_env(container)["BETTING_READINESS_GRACE_S"]) > 0
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def _services(rendered: Rendered) -> dict[str, Manifest]:
    return {d["metadata"]["name"]: d for d in rendered.documents if d["kind"] == "Service"}


@pytest.mark.parametrize("name", CHARTS)
def test_helm_test_plays_the_smoke_match_against_both_servers(name: str) -> None:
    rendered = source(name)
    (pod,) = [d for d in rendered.documents if d["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = pod_spec(pod)["containers"][0]
    args = container["args"]
    assert args[0] == "smoke"
    services = _services(rendered)
    for flag, server in (("--api", "line-provider"), ("--bets-api", "bet-maker")):
        url = urlsplit(args[args.index(flag) + 1])
        service = services[url.hostname or ""]
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == server
        assert url.port == service["spec"]["ports"][0]["port"]
    assert "BETTING_AUTH_SECRET" in _env(container)  # it mints its own tokens


def test_the_http_route_routes_as_the_ingress_does() -> None:
    rendered = source("chart-observability")
    (route,) = [d for d in rendered.documents if d["kind"] == "HTTPRoute"]
    services = _services(rendered)
    routes = {}
    for rule in route["spec"]["rules"]:
        (match,) = rule["matches"]
        (backend,) = rule["backendRefs"]
        service = services[backend["name"]]
        assert backend["port"] in {p["port"] for p in service["spec"]["ports"]}
        routes[match["path"]["value"]] = service["spec"]["selector"]["app.kubernetes.io/component"]
    assert routes == {"/events": "line-provider", "/bets": "bet-maker"}
    assert route["spec"]["parentRefs"][0]["name"] == "public"
    assert not [d for d in source("chart-default").documents if d["kind"] == "HTTPRoute"]


# --- observability ------------------------------------------------------------------------


def _metric_names() -> set[str]:
    """Every series the functions and the servers export, with a histogram's and a counter's
    own suffixes."""
    from prometheus_client import CollectorRegistry

    import betting.metrics
    import gateway.metrics
    import gateway.producer
    import gateway.routers.bets

    names = set()
    registry: CollectorRegistry
    for registry in (betting.metrics.REGISTRY, gateway.metrics.REGISTRY):
        for family in registry.collect():
            names.add(family.name)
            names |= {family.name + suffix for suffix in ("_total", "_bucket", "_sum", "_count")}
    return names


def test_monitors_scrape_the_ports_the_pods_serve_metrics_on() -> None:
    rendered = source("chart-observability")
    kinds = {d["kind"]: d for d in rendered.documents if d["apiVersion"].startswith("monitoring")}
    assert set(kinds) == {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    assert all(
        d["metadata"]["labels"]["release"] == "kube-prometheus-stack" for d in kinds.values()
    )
    selected = kinds["PodMonitor"]["spec"]["selector"]["matchExpressions"][0]["values"]
    assert sorted(selected) == sorted(FUNCTIONS)
    (endpoint,) = kinds["PodMonitor"]["spec"]["podMetricsEndpoints"]
    for deployment in _function_deployments(rendered).values():
        container = pod_spec(deployment)["containers"][0]
        (port,) = [p for p in container["ports"] if p["name"] == endpoint["port"]]
        assert str(port["containerPort"]) == _env(container)["BETTING_METRICS_PORT"]
    services = kinds["ServiceMonitor"]["spec"]["selector"]["matchExpressions"][0]["values"]
    assert sorted(services) == sorted(SERVERS)
    assert kinds["ServiceMonitor"]["spec"]["endpoints"][0] == {
        "port": "http", "path": "/metrics", "interval": "15s"
    }  # fmt: skip
    for name in ("chart-default", "chart-kind"):
        assert not [d for d in source(name).documents if d["apiVersion"].startswith("monitoring")]


def test_the_alerts_cover_lag_dead_letters_staleness_and_5xx_on_real_series() -> None:
    rendered = source("chart-observability")
    (rule,) = [d for d in rendered.documents if d["kind"] == "PrometheusRule"]
    alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {
        "BettingFunctionLagging", "BettingDeadLetters", "BettingFunctionStale",
        "BettingFunctionNotCommitting", "BettingServerErrors",
    }  # fmt: skip
    assert "> 500" in alerts["BettingFunctionLagging"]
    assert 'status=~"5.."' in alerts["BettingServerErrors"]
    known = _metric_names()
    for alert, expr in alerts.items():
        used = set(re.findall(r"\b((?:betting_function|gateway)_[a-z_]+)", expr))
        assert used and used <= known, (alert, used - known)


def test_the_dashboard_is_a_labelled_configmap_of_real_series() -> None:
    rendered = source("chart-observability")
    (configmap,) = [d for d in rendered.documents if d["kind"] == "ConfigMap"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["labels"]["grafana_folder"] == "betting"
    dashboard = json.loads(configmap["data"]["betting-pipeline.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b((?:betting_function|gateway)_[a-z_]+)", e)}
    assert used <= _metric_names()
    # The functions' six kinds of series and the servers' requests are all on it.
    for series in (
        "betting_function_records_processed_total", "betting_function_records_dead_lettered_total",
        "betting_function_consumer_lag", "betting_function_seconds_since_last_commit",
        "betting_function_batch_size_bucket", "betting_function_write_duration_seconds_bucket",
        "betting_function_rebalances_total", "gateway_requests_total",
    ):  # fmt: skip
        assert series in used, series
    assert not [d for d in source("chart-default").documents if d["kind"] == "ConfigMap"]


@pytest.mark.parametrize("password", ["with space", "plus+sign", "s3cret/with@special:chars%"])
def test_any_password_survives_the_database_url(password: str) -> None:
    rendered = render_chart({"database": {"password": password}})
    (secret,) = [d for d in yaml.safe_load_all(rendered["betting/templates/secret.yaml"]) if d]
    url = make_url(base64.b64decode(secret["data"]["database-url"]).decode())
    assert url.password == password
