"""Every file in the repository opens with a comment that says what it is for.

Each kind of file says it in its own syntax; `git ls-files` decides what "every file" is, so a
new file is checked as soon as it is added.
"""

import ast
import json
import subprocess
from pathlib import Path, PurePosixPath

import pytest

REPO = Path(__file__).resolve().parents[2]

# Kept byte for byte as published upstream, so they can be compared with their source;
# tests/deploy/schemas/README.md says what each one is and where it comes from.
EXCEPTIONS = {
    "tests/deploy/schemas/compose-spec.json",
    "tests/deploy/schemas/keda.sh_scaledobjects.yaml",
    "tests/deploy/schemas/keda.sh_triggerauthentications.yaml",
    "tests/deploy/schemas/monitoring.coreos.com_servicemonitors.yaml",
    "tests/deploy/schemas/monitoring.coreos.com_podmonitors.yaml",
    "tests/deploy/schemas/monitoring.coreos.com_prometheusrules.yaml",
    "tests/deploy/schemas/gateway.networking.k8s.io_httproutes.yaml",
}


# Images have no comment syntax; the Markdown next to them says what they show.
BINARY_SUFFIXES = {".png"}


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    # A file deleted in the work tree but not yet in the index is not a file any more.
    return sorted(name for name in listed.split("\0") if name and (REPO / name).is_file())


def opening_comment(path: PurePosixPath, text: str) -> bool:
    """Whether `text`, the content of the file at `path`, opens with its kind's comment."""
    lines = text.splitlines()
    if path.suffix == ".py":
        return bool(ast.get_docstring(ast.parse(text)))
    if path.suffix == ".md":
        return bool(lines) and lines[0].startswith("# ")
    if path.suffix == ".json":
        document = json.loads(text)
        return isinstance(document, dict) and bool(document.get("$comment"))
    if path.suffix == ".lua":
        return bool(lines) and lines[0].startswith("--")
    if path.suffix == ".mako":
        return bool(lines) and lines[0].startswith("## ")
    if "templates" in path.parts and path.parts[0] == "helm":
        return bool(lines) and lines[0].startswith(("{{/*", "{{- /*"))
    # Everything else takes `#` comments: YAML, TOML, ini, shell, Makefile, Dockerfile,
    # requirements and ignore files. A shebang comes before the comment.
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    return bool(lines) and lines[0].startswith("#")


def test_every_tracked_file_opens_with_a_comment() -> None:
    files = tracked_files()
    assert "README.md" in files
    missing = [
        name
        for name in files
        if name not in EXCEPTIONS
        and PurePosixPath(name).suffix not in BINARY_SUFFIXES
        and not opening_comment(PurePosixPath(name), (REPO / name).read_text())
    ]
    assert not missing, f"no opening comment: {missing}"


def test_every_exception_is_still_a_tracked_file() -> None:
    assert set(tracked_files()) >= EXCEPTIONS


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.py", '"""What it is for."""\nimport os\n', True),
        ("a.py", "# a comment is not a docstring\nimport os\n", False),
        ("pkg/__init__.py", "", False),
        ("README.md", "# Title\n", True),
        ("README.md", "Title\n=====\n", False),
        ("values.schema.json", '{"$comment": "What it checks.", "type": "object"}', True),
        ("values.schema.json", '{"type": "object"}', False),
        ("migrations/script.py.mako", '## The template.\n"""${message}"""\n', True),
        ("helm/c/templates/a.yaml", "{{- /* What it renders. */}}\nkind: Service\n", True),
        ("helm/c/templates/a.yaml", "# rendered into the output\nkind: Service\n", False),
        ("helm/c/Chart.yaml", "# The chart.\napiVersion: v2\n", True),
        ("k8s/a.yaml", "---\n# too late\nkind: Service\n", False),
        ("scripts/a.sh", "#!/usr/bin/env bash\n# What it does.\nset -e\n", True),
        ("scripts/a.sh", "#!/usr/bin/env bash\nset -e\n", False),
        (".gitignore", ".venv/\n", False),
    ],
)
def test_opening_comment_by_kind_of_file(name: str, text: str, expected: bool) -> None:
    assert opening_comment(PurePosixPath(name), text) is expected
