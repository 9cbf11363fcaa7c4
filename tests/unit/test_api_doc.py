"""docs/API.md and each server's OpenAPI document describe the same calls and statuses.

The call tables of docs/API.md (first column `call`) are parsed: the method and path of each
row, every status code written as `NNN` in its answers, its `who` and its section. Each server
is compared with its own section and the operations section, which both serve; its OpenAPI
document comes from the app itself, with no server running. 422 is compared like any other
status: the doc lists it wherever FastAPI documents it.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from gateway import bet_maker, line_provider

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_CALL = re.compile(rf"`({'|'.join(METHODS)}) (/[^`\s?]*)")
_STATUS = re.compile(r"`([1-5][0-9][0-9])`")
# Each server's own section (by how its heading starts), its app, and the prefix of its calls.
SERVERS = {
    "The line provider": (line_provider.app, "/events"),
    "The bet maker": (bet_maker.app, "/bets"),
}
OPERATIONS = "Operations"

Call = tuple[str, str]  # (method, path with every {parameter} written as {})


@dataclass(frozen=True)
class Row:
    section: str
    who: str
    statuses: frozenset[str]


def normalise(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def cells(line: str) -> list[str]:
    # A table row; "\|" inside a cell is not a separator.
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def documented_calls(text: str) -> dict[Call, Row]:
    """Every row of every call table, by (method, path)."""
    calls: dict[Call, Row] = {}
    section, in_call_table = "", False
    for line in text.splitlines():
        if line.startswith("## "):
            section = line.removeprefix("## ").strip()
        if not line.startswith("|"):
            in_call_table = False
            continue
        row = cells(line)
        if row[0] == "call":
            in_call_table = True
            continue
        if not in_call_table or set(row[0]) <= {"-", ":"}:
            continue
        match = _CALL.search(row[0])
        assert match, f"a call table row that names no call: {line}"
        call = (match.group(1), normalise(match.group(2)))
        assert call not in calls, f"{call} is documented twice"
        calls[call] = Row(section, row[1], frozenset(_STATUS.findall(row[2])))
    return calls


def served_calls(spec: dict[str, Any]) -> dict[Call, dict[str, Any]]:
    return {
        (method.upper(), normalise(path)): operation
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }


def _in(section: str, row: Row) -> bool:
    return row.section.startswith(section)


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    """The heading of each server's section, in turn."""
    heading: str = request.param
    return heading


@pytest.fixture(scope="module")
def documented(server: str) -> dict[Call, Row]:
    """The calls of the server's own section and of the operations section."""
    every = documented_calls(API_DOC.read_text())
    return {c: r for c, r in every.items() if _in(server, r) or _in(OPERATIONS, r)}


@pytest.fixture(scope="module")
def served(server: str) -> dict[Call, dict[str, Any]]:
    app: FastAPI = SERVERS[server][0]
    return served_calls(app.openapi())


def test_the_doc_lists_exactly_the_calls_the_servers_openapi_document_has(
    documented: dict[Call, Row], served: dict[Call, dict[str, Any]]
) -> None:
    assert documented, "no call tables found in docs/API.md"
    undocumented = sorted(set(served) - set(documented))
    not_served = sorted(set(documented) - set(served))
    assert (undocumented, not_served) == ([], []), "(served but undocumented, documented only)"


def test_the_doc_lists_exactly_the_statuses_each_call_answers(
    documented: dict[Call, Row], served: dict[Call, dict[str, Any]]
) -> None:
    differences = {
        f"{method} {path}": {
            "documented only": sorted(row.statuses - set(served[method, path]["responses"])),
            "served only": sorted(set(served[method, path]["responses"]) - row.statuses),
        }
        for (method, path), row in documented.items()
        if (method, path) in served and row.statuses != set(served[method, path]["responses"])
    }
    assert differences == {}


def test_the_doc_says_which_calls_need_a_token(
    documented: dict[Call, Row], served: dict[Call, dict[str, Any]]
) -> None:
    for call, row in documented.items():
        if call in served:
            needs_token = bool(served[call].get("security"))
            assert needs_token == (row.who != "anyone"), f"{call}: who is {row.who!r}"


def test_each_servers_calls_are_in_its_own_section() -> None:
    prefixes = {prefix: heading for heading, (_, prefix) in SERVERS.items()}
    for (method, path), row in documented_calls(API_DOC.read_text()).items():
        expected = prefixes.get("/" + path.split("/")[1], OPERATIONS)
        assert _in(expected, row), f"{method} {path} is under {row.section!r}"


def test_the_parser_reads_calls_statuses_and_sections() -> None:
    text = """
## The line provider: events

| call | who | answers |
|---|---|---|
| `PATCH /events/{id}` `{state}` | operator | `202`; `404` unknown; `409` (`"1-0"`) |

| field | meaning |
|---|---|
| `GET /nowhere` | not a call table |
"""
    assert documented_calls(text) == {
        ("PATCH", "/events/{}"): Row(
            "The line provider: events", "operator", frozenset({"202", "404", "409"})
        )
    }
