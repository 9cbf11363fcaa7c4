"""The dev front's merged OpenAPI document: the two servers' calls, nothing lost, no clash."""

from typing import Any

import pytest

from gateway import bet_maker, line_provider
from launcher.local.front import MergeConflict, merge_openapi, upstreams

LINE_PROVIDER, BET_MAKER = upstreams("http://lp", "http://bm")


def refs(node: Any) -> set[str]:
    """Every `$ref` in a part of a document."""
    if isinstance(node, dict):
        found: set[str] = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(value) for value in node))
    return set()


def test_the_merged_document_has_each_servers_calls_and_everything_they_refer_to() -> None:
    lp, bm = line_provider.app.openapi(), bet_maker.app.openapi()

    merged = merge_openapi([(LINE_PROVIDER, lp), (BET_MAKER, bm)])

    assert set(merged["paths"]) == {
        path for path in (*lp["paths"], *bm["paths"]) if path.startswith(("/events", "/bets"))
    }
    assert merged["paths"]["/events"] == lp["paths"]["/events"]
    assert merged["paths"]["/bets/{bet_id}"] == bm["paths"]["/bets/{bet_id}"]
    schemas = merged["components"]["schemas"]
    assert refs(merged["paths"]), "the calls refer to their schemas"
    for ref in refs(merged["paths"]) | refs(schemas):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert merged["components"]["securitySchemes"] == lp["components"]["securitySchemes"]
    assert "http://lp/docs" in merged["info"]["description"]


def test_a_component_the_servers_define_differently_is_refused() -> None:
    def document(problem: dict[str, Any]) -> dict[str, Any]:
        return {
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {},
            "components": {"schemas": {"Problem": problem}},
        }

    with pytest.raises(MergeConflict, match=r"components\.schemas\.Problem"):
        merge_openapi(
            [
                (LINE_PROVIDER, document({"type": "object"})),
                (BET_MAKER, document({"type": "string"})),
            ]
        )


@pytest.mark.parametrize(
    ("path", "served_by"),
    [
        ("/events", "line provider"),
        ("/events/1", "line provider"),
        ("/bets", "bet maker"),
        ("/bets/1/x", "bet maker"),
        ("/eventsx", None),
        ("/betsy", None),
        ("/", None),
        ("/metrics", None),
    ],
)
def test_paths_go_to_the_server_of_their_prefix(path: str, served_by: str | None) -> None:
    found = [u.name for u in (LINE_PROVIDER, BET_MAKER) if u.serves(path)]
    assert found == ([served_by] if served_by else [])
