"""checkov finds nothing wrong in what the chart renders, what kustomize builds and the
Dockerfile, except the checks skipped on purpose, each with a written reason."""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.sources import REPO, source, source_names

CHECKOV = Path(os.environ.get("CHECKOV", REPO / ".venv-checkov" / "bin" / "checkov"))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """One checkov run over every source, each in its own file (checkov's helm runner needs a
    helm binary, so it scans the rendered output)."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make deploy-tools` (or set CHECKOV)")
    directory = tmp_path_factory.mktemp("rendered")
    for name in source_names():
        (directory / f"{name}.yaml").write_text(yaml.safe_dump_all(source(name).documents))
    shutil.copy(REPO / "Dockerfile", directory / "Dockerfile")
    result = subprocess.run(
        [str(CHECKOV), "--directory", str(directory), "--framework", "kubernetes", "dockerfile",
         "--output", "json", "--compact", "--skip-download"],
        capture_output=True, text=True, check=False, cwd=directory,
    )  # fmt: skip
    assert result.stdout, result.stderr
    parsed = json.loads(result.stdout)
    reports: list[dict[str, Any]] = parsed if isinstance(parsed, list) else [parsed]
    return reports


def test_checkov_scanned_every_source_and_the_dockerfile(report: list[dict[str, Any]]) -> None:
    by_type = {r["check_type"]: r for r in report}
    assert set(by_type) == {"kubernetes", "dockerfile"}
    for checked in by_type.values():
        assert checked["summary"]["parsing_errors"] == 0
        assert checked["summary"]["resource_count"] > 0
    passed = by_type["kubernetes"]["results"]["passed_checks"]
    assert {Path(c["file_path"]).stem for c in passed} == set(source_names())


def test_no_check_fails(report: list[dict[str, Any]]) -> None:
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} in {Path(c['file_path']).name}"
        for r in report
        for c in r["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)


def test_every_skipped_check_says_why(report: list[dict[str, Any]]) -> None:
    skipped = [c for r in report for c in r["results"].get("skipped_checks", [])]
    assert skipped, "the manifests skip some checks on purpose; checkov should report them"
    unexplained = [
        f"{c['check_id']} on {c['resource']}"
        for c in skipped
        if len(c["check_result"].get("suppress_comment", "").strip()) < 20
    ]
    assert not unexplained, unexplained
