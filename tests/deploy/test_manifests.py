"""Every manifest, rendered by the chart or built by kustomize, is valid Kubernetes (strict: no
unknown field) or a valid custom resource (KEDA, the Prometheus Operator, the Gateway API) by
its CRD, and every pod runs locked down."""

from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.sources import (
    IMAGE,
    KUBERNETES_VERSIONS,
    Manifest,
    Rendered,
    kustomize_source_names,
    platform_containers,
    pod_labels,
    pod_spec,
    schemas_dir,
    source,
    source_names,
    workloads,
)

SOURCES = source_names()


def _strict(schema: Any) -> Any:
    """A CRD's openAPIV3Schema as JSON Schema that, like the API server's pruning, knows every
    field: objects with properties accept no other key unless the CRD says so."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in strict
        and "additionalProperties" not in strict
        and not strict.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


@cache
def crd_validators() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    """(apiVersion, kind) -> validator, for every CRD in the shared schemas."""
    validators = {}
    for path in sorted(schemas_dir().glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = _strict(version["schema"]["openAPIV3Schema"])
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(
                    schema
                )
    return validators


# API groups served by custom resources, validated against their CRDs in schemas_dir().
CRD_GROUPS = ("keda.sh", "monitoring.coreos.com", "gateway.networking.k8s.io")


def _validate(doc: Manifest, version: str) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if doc["apiVersion"].split("/")[0] in CRD_GROUPS:
        assert key in crd_validators(), f"no CRD schema for {key} in {schemas_dir()}"
        errors = sorted(crd_validators()[key].iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, [f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors]
        return
    kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", SOURCES)
def test_manifests_validate_strictly(name: str, version: str) -> None:
    rendered = source(name)
    assert rendered.documents, f"{name} rendered nothing"
    failures = []
    for doc in rendered.documents:
        try:
            _validate(doc, version)
        except (kubernetes_validate.ValidationError, AssertionError) as error:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {error}")
    assert not failures, "\n".join(failures)


def test_the_validators_are_strict() -> None:
    """A misspelled field fails both validators, so a pass above means something."""
    deployment = next(d for d in source("kustomize-base").documents if d["kind"] == "Deployment")
    typo = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES_VERSIONS[-1], strict=True)
    scaled = next(d for d in source("kustomize-base").documents if d["kind"] == "ScaledObject")
    assert not list(crd_validators()[("keda.sh/v1alpha1", "ScaledObject")].iter_errors(scaled))
    typo = {**scaled, "spec": {**scaled["spec"], "maxReplicas": 3}}
    assert list(crd_validators()[("keda.sh/v1alpha1", "ScaledObject")].iter_errors(typo))
    # KEDA's trigger metadata is a map of strings: a bare number is a mistake.
    trigger = {**scaled["spec"]["triggers"][0]}
    trigger["metadata"] = {**trigger["metadata"], "lagThreshold": 10}
    bad = {**scaled, "spec": {**scaled["spec"], "triggers": [trigger]}}
    assert list(crd_validators()[("keda.sh/v1alpha1", "ScaledObject")].iter_errors(bad))


@pytest.mark.parametrize("name", kustomize_source_names())
def test_kustomize_puts_everything_in_the_namespace(name: str) -> None:
    for doc in source(name).documents:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "betting", doc["metadata"]["name"]


def test_the_kind_overlay_adds_redpanda_and_postgres_to_the_base() -> None:
    base = {(d["kind"], d["metadata"]["name"]) for d in source("kustomize-base").documents}
    kind = {(d["kind"], d["metadata"]["name"]) for d in source("kustomize-kind").documents}
    assert base < kind
    assert {("StatefulSet", "redpanda"), ("StatefulSet", "postgres")} <= kind - base
    images = {c["image"] for _, c in platform_containers(source("kustomize-kind"))}
    assert images == {IMAGE}


def test_the_kind_overlays_redpanda_creates_no_topic_implicitly() -> None:
    # dev-container mode turns topic auto-creation on; the default is off (DESIGN.md rule 8).
    [redpanda] = [
        d
        for d in source("kustomize-kind").documents
        if d["metadata"]["name"] == "redpanda" and d["kind"] == "StatefulSet"
    ]
    [container] = redpanda["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["redpanda", "start"]
    assert not any(arg.startswith("--mode") for arg in container["args"])


def test_the_base_ships_no_secret_so_no_key_anyone_could_know() -> None:
    base = source("kustomize-base").documents
    assert [d["metadata"]["name"] for d in base if d["kind"] == "Secret"] == []
    kind = source("kustomize-kind").documents
    assert ("Secret", "betting-secrets") in {(d["kind"], d["metadata"]["name"]) for d in kind}


def test_the_base_applies_the_jobs_before_the_deployments() -> None:
    """kubectl applies in the listed order: the topics exist (the Job creates them with their
    partitions) before a producer could meet a missing one."""
    kinds = [d["kind"] for d in source("kustomize-base").documents]
    assert kinds[0] == "Namespace"
    last_job = max(i for i, kind in enumerate(kinds) if kind == "Job")
    assert last_job < kinds.index("Deployment")
    # The NetworkPolicies are in force before any pod starts.
    assert max(i for i, kind in enumerate(kinds) if kind == "NetworkPolicy") < kinds.index("Job")


def test_the_bases_jobs_are_named_after_the_image_tag() -> None:
    """A Job's pod template is immutable: a new tag must make new Jobs, so `kubectl apply` of
    an upgrade never fails with "field is immutable"."""
    jobs = [d for d in source("kustomize-base").documents if d["kind"] == "Job"]
    assert len(jobs) == 2
    for job in jobs:
        tag = pod_spec(job)["containers"][0]["image"].rsplit(":", 1)[1]
        component = job["metadata"]["labels"]["app.kubernetes.io/component"]
        assert job["metadata"]["name"] == f"{component}-{tag}"
        assert job["spec"]["ttlSecondsAfterFinished"] > 0


@pytest.mark.parametrize("name", ["kustomize-base", "kustomize-kind"])
def test_k8s_servers_drain_and_functions_serve_metrics(name: str) -> None:
    documents = source(name).documents
    config = next(
        d
        for d in documents
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "betting-config"
    )
    for deployment in (d for d in documents if d["kind"] == "Deployment"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        spec = pod_spec(deployment)
        container = spec["containers"][0]
        if component in SERVERS:
            assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
            continue
        (port,) = container["ports"]
        assert (port["name"], str(port["containerPort"])) == (
            "metrics",
            config["data"]["BETTING_METRICS_PORT"],
        )
        if component == "bet-scorer":
            assert spec["terminationGracePeriodSeconds"] > 120 + 10  # its wait, then a flush
    assert float(config["data"]["BETTING_READINESS_GRACE_S"]) > 0
    assert config["data"]["BETTING_LOG_FORMAT"] == "json"


@pytest.mark.parametrize("name", SOURCES)
def test_every_pod_runs_locked_down(name: str) -> None:
    for workload in workloads(source(name)):
        spec = pod_spec(workload)
        label = f"{workload['kind']}/{workload['metadata']['name']}"
        assert spec["automountServiceAccountToken"] is False, label
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, label
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", label
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, label
            assert security["capabilities"]["drop"] == ["ALL"], label
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), label
            assert {"cpu", "memory"} <= set(resources["limits"]), label


@pytest.mark.parametrize("name", SOURCES)
def test_platform_containers_are_read_only_and_run_as_the_images_user(name: str) -> None:
    for workload, container in platform_containers(source(name)):
        label = f"{workload['kind']}/{workload['metadata']['name']}"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, label
        assert pod_spec(workload)["securityContext"]["runAsUser"] == 10001, label
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts, label
        # No `command`: the image's ENTRYPOINT (`betting`) runs, with the subcommand as args.
        assert "command" not in container, label


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _policies(rendered: Rendered, labels: dict[str, str]) -> list[Manifest]:
    return [
        d
        for d in rendered.documents
        if d["kind"] == "NetworkPolicy" and _selects(d["spec"]["podSelector"], labels)
    ]


def _egress_ports(policies: list[Manifest]) -> set[int]:
    return {
        port["port"]
        for policy in policies
        for rule in policy["spec"].get("egress", [])
        for port in rule.get("ports", [])
    }


def _ingress_ports(policies: list[Manifest], pod: Manifest) -> set[int]:
    """The pod's ports the policies let in, a named port (`http`) as the number it names."""
    named = {
        port["name"]: port["containerPort"]
        for container in pod["containers"]
        for port in container.get("ports", [])
        if "name" in port
    }
    return {
        named[port["port"]] if isinstance(port["port"], str) else port["port"]
        for policy in policies
        for rule in policy["spec"].get("ingress", [])
        for port in rule.get("ports", [])
    }


@pytest.mark.parametrize("name", [n for n in SOURCES if n != "chart-mixed-modes"])
def test_only_what_must_talk_talks(name: str) -> None:
    """Every pod is under a default deny both ways; then exactly the ports its role needs."""
    rendered = source(name)
    database_port = 6432 if name == "chart-external-services" else 5432
    broker_port = 9093 if name in {"chart-external-services", "chart-secured-kafka"} else 9092
    needs: dict[str, tuple[set[int], set[int]]] = {
        # component: (egress ports besides DNS, ingress ports); the bet maker never the broker
        "line-provider": ({database_port, broker_port}, {8001}),
        "bet-maker": ({database_port}, {8002}),
        # Prometheus in to a function's metrics port (a server's /metrics is on its http port).
        "event-writer": ({database_port, broker_port}, {9464}),
        "bet-scorer": ({database_port, broker_port}, {9464}),
        "bet-writer": ({database_port, broker_port}, {9464}),
        # helm test's smoke match calls the two servers, nothing else.
        "smoke-test": ({8001, 8002}, set()),
        "migrate": ({database_port}, set()),
        "topics": ({database_port, broker_port}, set()),
        "database": (set(), {5432}),
        "broker": (set(), {9092}),
    }
    for workload in workloads(rendered):
        labels = pod_labels(workload)
        component = labels["app.kubernetes.io/component"]
        policies = _policies(rendered, labels)
        types = {t for p in policies for t in p["spec"]["policyTypes"]}
        assert types == {"Ingress", "Egress"}, f"{component} is not under a default deny"
        egress, ingress = needs[component]
        assert _egress_ports(policies) - {53} == egress, component
        assert _ingress_ports(policies, pod_spec(workload)) == ingress, component


def test_networkpolicies_can_be_turned_off() -> None:
    assert not [d for d in source("chart-mixed-modes").documents if d["kind"] == "NetworkPolicy"]


FUNCTIONS = ("event-writer", "bet-scorer", "bet-writer")


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    """Every scalar of a manifest by its path: {("spec", "replicas"): 1, ...}."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {path: value}
    found: dict[tuple[Any, ...], Any] = {}
    for key, item in items:
        found |= _leaves(item, (*path, key))
    return found


CONTAINER = ("spec", "template", "spec", "containers", 0)
_COMPONENT = "app.kubernetes.io/component"
# Where a Deployment built from a shared k8s/ definition says which component it is.
NAMING = {
    ("metadata", "name"),
    ("metadata", "labels", _COMPONENT),
    ("spec", "selector", "matchLabels", _COMPONENT),
    ("spec", "template", "metadata", "labels", _COMPONENT),
    (*CONTAINER, "name"),
    (*CONTAINER, "args", 0),
}


def _deployment_leaves(name: str, components: tuple[str, ...]) -> dict[str, dict[Any, Any]]:
    """The leaves of each of `components`' Deployments in one source, by name; all there."""
    deployments = {
        doc["metadata"]["name"]: _leaves(doc)
        for doc in source(name).documents
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] in components
    }
    assert sorted(deployments) == sorted(components)
    return deployments


@pytest.mark.parametrize("name", ["kustomize-base", "kustomize-kind"])
def test_the_function_deployments_differ_only_by_name_command_probe_and_grace(name: str) -> None:
    """k8s/ defines a function Deployment once: the three built from it share every field but
    their name (and the component label the PDBs, policies and ScaledObjects select on), their
    command, and the scorer's longer probe."""
    deployments = _deployment_leaves(name, FUNCTIONS)
    container, naming = CONTAINER, NAMING
    max_age = {
        (*container, probe, "exec", "command", 3)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    shape = set(deployments["event-writer"])
    assert naming | max_age <= shape
    for function, leaves in deployments.items():
        assert set(leaves) == shape, function
        assert {leaves[path] for path in naming} == {function}
    grace = ("spec", "template", "spec", "terminationGracePeriodSeconds")
    differ = {path for path in shape if len({d[path] for d in deployments.values()}) > 1}
    assert differ == naming | max_age | {grace}
    ages = {function: {d[path] for path in max_age} for function, d in deployments.items()}
    assert ages == {"event-writer": {"60"}, "bet-scorer": {"180"}, "bet-writer": {"60"}}


SERVERS = ("line-provider", "bet-maker")


@pytest.mark.parametrize("name", ["kustomize-base", "kustomize-kind"])
def test_the_server_deployments_differ_only_by_name_command_port_replicas_and_broker(
    name: str,
) -> None:
    """k8s/ defines a server Deployment once: the two built from it share every field but their
    name and component label, command and port; the line provider has a fixed replica count
    (an HPA owns the bet maker's) and alone gets the broker's address."""
    deployments = _deployment_leaves(name, SERVERS)
    container, naming = CONTAINER, NAMING
    for server, leaves in deployments.items():
        assert {leaves[path] for path in naming} == {server}
    line_provider, bet_maker = deployments["line-provider"], deployments["bet-maker"]
    only_line_provider = set(line_provider) - set(bet_maker)
    assert set(bet_maker) - set(line_provider) == set()
    assert only_line_provider == {
        ("spec", "replicas"),
        (*container, "envFrom", 2, "configMapRef", "name"),
    }
    assert line_provider[(*container, "envFrom", 2, "configMapRef", "name")] == "betting-kafka"
    differ = {path for path in bet_maker if line_provider[path] != bet_maker[path]}
    assert differ == naming | {(*container, "ports", 0, "containerPort")}
    hpa = next(
        doc
        for doc in source(name).documents
        if doc["kind"] == "HorizontalPodAutoscaler" and doc["metadata"]["name"] == "bet-maker"
    )
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "bet-maker",
    }


def _ingress_backends(rendered: Rendered) -> dict[str, tuple[str, str]]:
    """What the one Ingress routes: path -> (Service, the component the Service selects)."""
    (ingress,) = [d for d in rendered.documents if d["kind"] == "Ingress"]
    services = {d["metadata"]["name"]: d for d in rendered.documents if d["kind"] == "Service"}
    routes = {}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["pathType"] == "Prefix"
            backend = path["backend"]["service"]
            service = services[backend["name"]]
            assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
            selected = service["spec"]["selector"]["app.kubernetes.io/component"]
            routes[path["path"]] = (backend["name"], selected)
    return routes


@pytest.mark.parametrize("name", ["kustomize-base", "kustomize-kind", "chart-ingress"])
def test_one_ingress_routes_events_to_the_line_provider_and_bets_to_the_bet_maker(
    name: str,
) -> None:
    routes = _ingress_backends(source(name))

    assert {path: component for path, (_, component) in routes.items()} == {
        "/events": "line-provider",
        "/bets": "bet-maker",
    }


def test_the_charts_ingress_is_behind_a_value() -> None:
    assert not [d for d in source("chart-default").documents if d["kind"] == "Ingress"]
    (ingress,) = [d for d in source("chart-ingress").documents if d["kind"] == "Ingress"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"secretName": "betting-tls", "hosts": ["betting.example.internal"]}
    ]
    assert ingress["spec"]["rules"][0]["host"] == "betting.example.internal"
