"""What the deploy checks look at: the chart rendered with each values file, the kustomize builds
of k8s/, the Compose file, and the Dockerfile with the files its COPY lines put in the image."""

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import helm_python
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "betting"
CI_VALUES = sorted((REPO / "helm" / "ci").glob("*.yaml"))
KUSTOMIZATIONS = ("k8s/base", "k8s/overlays/kind", "k8s/dev-services")
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
RELEASE = "betting"
NAMESPACE = "betting"
# The image every platform container runs (the Dockerfile's), by repository name.
IMAGE_REPOSITORY = "betting"
# What Compose, k8s/ and the chart all run: the repository at the chart's appVersion.
_APP_VERSION = yaml.safe_load((REPO / "helm" / "betting" / "Chart.yaml").read_text())["appVersion"]
IMAGE = f"{IMAGE_REPOSITORY}:{_APP_VERSION}"
# The Kubernetes versions the manifests must validate for: the chart's kubeVersion floor and the
# newest kubernetes-validate knows.
KUBERNETES_VERSIONS = tuple(os.environ.get("DEPLOY_KUBERNETES_VERSIONS", "1.25,1.37").split(","))


# The KEDA CRDs and the Compose spec, copied from upstream (their README says from where).
SCHEMAS = Path(__file__).resolve().parent / "schemas"


def schemas_dir() -> Path:
    """The schemas the checks validate against: $DEPLOY_SCHEMAS_DIR (to try others), else ours."""
    configured = os.environ.get("DEPLOY_SCHEMAS_DIR")
    return Path(configured) if configured else SCHEMAS


Manifest = dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """One source of manifests: a chart render or a kustomize build."""

    name: str
    # template path -> the documents rendered from it (kustomize builds have one "template")
    by_template: dict[str, list[Manifest]]

    @property
    def documents(self) -> list[Manifest]:
        return [doc for docs in self.by_template.values() for doc in docs]


# What every install must add to the chart's defaults: the auth key, here from a Secret the user
# creates (the chart refuses to render without one, test_chart). Values that say anything about
# the key themselves (auth, developmentMode) render without it.
REQUIRED_VALUES: dict[str, Any] = {"auth": {"existingSecret": "betting-auth"}}


def with_required(given: dict[str, Any]) -> dict[str, Any]:
    if "auth" in given or "developmentMode" in given:
        return given
    return merged(REQUIRED_VALUES, given)


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, maps merged key by key as Helm merges values."""
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def values_of(values_file: Path | None) -> dict[str, Any]:
    """The values a source renders with: the file's (none for the defaults) over REQUIRED_VALUES."""
    given = yaml.safe_load(values_file.read_text()) if values_file else {}
    return with_required(given)


def chart_source_names() -> list[str]:
    return ["chart-default"] + [f"chart-{path.stem}" for path in CI_VALUES]


def kustomize_source_names() -> list[str]:
    return [f"kustomize-{path.rsplit('/', 1)[-1]}" for path in KUSTOMIZATIONS]


def source_names() -> list[str]:
    return chart_source_names() + kustomize_source_names()


def values_file_of(name: str) -> Path | None:
    if name == "chart-default":
        return None
    return REPO / "helm" / "ci" / f"{name.removeprefix('chart-')}.yaml"


@cache
def chart() -> helm_python.Chart:
    return helm_python.Chart.load(CHART)


def render_chart(values: dict[str, Any] | None, *, bare: bool = False) -> dict[str, str]:
    """Render as `helm install` would, offline, with `values` over REQUIRED_VALUES (`bare`: over
    the chart's defaults alone)."""
    given = values or {}
    rendered: dict[str, str] = chart().render(
        given if bare else with_required(given),
        name=RELEASE,
        namespace=NAMESPACE,
        is_install=True,
    )
    return rendered


def _documents(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@cache
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise RuntimeError("kubectl is needed for `kubectl kustomize` (it runs offline)")
    return path


@cache
def source(name: str) -> Rendered:
    if name.startswith("chart-"):
        rendered = render_chart(values_of(values_file_of(name)))
        return Rendered(
            name,
            {
                template: _documents(text)
                for template, text in rendered.items()
                if not template.endswith("NOTES.txt")
            },
        )
    directory = next(d for d in KUSTOMIZATIONS if d.endswith(name.removeprefix("kustomize-")))
    built = subprocess.run(
        [kubectl(), "kustomize", str(REPO / directory)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Rendered(name, {directory: _documents(built)})


def workloads(rendered: Rendered) -> list[Manifest]:
    """Everything that runs pods, the `helm test` Pod included."""
    kinds = {"Deployment", "StatefulSet", "Job", "Pod"}
    return [d for d in rendered.documents if d["kind"] in kinds]


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = (
        workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]
    )
    return spec


def pod_labels(workload: Manifest) -> dict[str, str]:
    meta = (
        workload["metadata"]
        if workload["kind"] == "Pod"
        else workload["spec"]["template"]["metadata"]
    )
    labels: dict[str, str] = meta["labels"]
    return labels


def runs_platform_image(container: Manifest) -> bool:
    image: str = container["image"]
    # repository:tag or repository@sha256:digest
    return image.rsplit("/", 1)[-1].split("@")[0].split(":")[0] == IMAGE_REPOSITORY


def platform_containers(rendered: Rendered) -> list[tuple[Manifest, Manifest]]:
    """(workload, container) for every container of the platform's own image."""
    return [
        (workload, container)
        for workload in workloads(rendered)
        for container in pod_spec(workload)["containers"]
        + pod_spec(workload).get("initContainers", [])
        if runs_platform_image(container)
    ]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


# --- the Dockerfile and what it copies ----------------------------------------------------------

Instruction = tuple[str, str]  # (KEYWORD, the rest of the line)


def _instructions(text: str) -> list[Instruction]:
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def dockerfile_stages() -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for keyword, rest in _instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def final_stage() -> list[Instruction]:
    return dockerfile_stages()[-1]


def context_copies(stage: list[Instruction]) -> list[tuple[list[str], str]]:
    """(sources, destination) of the stage's COPY lines that read the build context."""
    copies = []
    for keyword, rest in stage:
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, destination = rest.split()
            copies.append((sources, destination))
    return copies


def _dockerignore_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker matches it: `*` and `?` stop at `/`, `**` does not."""
    parts = re.split(r"(\*\*/?|\*|\?)", pattern.strip("/"))
    wildcards = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wildcards.get(part, re.escape(part)) for part in parts) + "$")


@cache
def _dockerignore() -> list[tuple[re.Pattern[str], bool]]:
    """(pattern, excludes) for each line of .dockerignore, in order."""
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            excludes = not line.startswith("!")
            rules.append((_dockerignore_pattern(line.removeprefix("!")), excludes))
    return rules


def in_build_context(relative: str) -> bool:
    """Whether .dockerignore lets the file in: the last line that matches it or one of its
    directories decides, as in Docker."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for pattern, excludes in _dockerignore():
        if any(pattern.match(candidate) for candidate in candidates):
            included = not excludes
    return included


def copied_files(stage: list[Instruction]) -> dict[str, Path]:
    """Where each file the stage copies from the build context lands (relative to WORKDIR)."""
    files = {}
    for sources, destination in context_copies(stage):
        target = destination.removeprefix("./")
        for name in sources:
            # A wildcard source copies whatever matches, possibly nothing (the wheelhouse).
            paths = sorted(REPO.glob(name)) if set(name) & set("*?[") else [REPO / name]
            for path in paths:
                files.update(_files_of(path, target))
    return files


def _files_of(path: Path, target: str) -> dict[str, Path]:
    files = {}
    found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in found:
        relative = file.relative_to(REPO).as_posix()
        if in_build_context(relative):
            inside = file.relative_to(path) if path.is_dir() else Path(file.name)
            files[(Path(target) / inside).as_posix()] = file
    return files


def lay_out_image(app: Path) -> Path:
    """Copy into `app` what the final stage puts in its WORKDIR (/app); return `app`."""
    for relative, file in copied_files(final_stage()).items():
        (app / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, app / relative)
    return app
