"""The log watch's rule (betting/log_watch.py): which answers of the broker are a new log."""

from collections.abc import Callable

import pytest

from betting import log_watch, topics


def _watch(monkeypatch: pytest.MonkeyPatch, said: list[tuple[str, str]]) -> log_watch.LogWatch:
    monkeypatch.setattr(topics, "incarnation", lambda connection, name, timeout_s=10: "id-1")
    return log_watch.LogWatch({}, [topics.EVENTS], 1.0, lambda t, why: said.append((t, why)))


@pytest.mark.parametrize("now", ["id-1", None])
def test_the_same_incarnation_or_no_answer_is_no_change(
    monkeypatch: pytest.MonkeyPatch, now: str | None
) -> None:
    said: list[tuple[str, str]] = []
    _watch(monkeypatch, said).confirm(topics.EVENTS, now)
    assert said == []


@pytest.mark.parametrize(
    ("now", "why"),
    [
        ("id-2", "topic events.taxonomy is a new log: incarnation id-2, started on id-1"),
        (log_watch.MISSING, "topic events.taxonomy is gone (it was incarnation id-1)"),
    ],
)
def test_a_new_incarnation_or_a_gone_topic_is_reported_naming_the_topic(
    monkeypatch: pytest.MonkeyPatch, now: str, why: str
) -> None:
    said: list[tuple[str, str]] = []
    _watch(monkeypatch, said).confirm(topics.EVENTS, now)
    assert said == [(topics.EVENTS, why)]


def test_a_topic_not_watched_is_never_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[tuple[str, str]] = []
    _watch(monkeypatch, said).confirm(topics.BETS, "id-9")
    assert said == []


def _fails(*args: object, **kwargs: object) -> str:
    raise topics.TopicsNotReady("no answer")


def _listed(answer: bool) -> Callable[..., bool]:
    return lambda *args, **kwargs: answer


@pytest.mark.parametrize(
    ("exists", "expected"),
    [(_listed(False), log_watch.MISSING), (_listed(True), None), (_fails, None)],
    ids=["not listed: gone", "listed but not described: cannot tell", "no answer: cannot tell"],
)
def test_a_topic_that_cannot_be_described_is_gone_only_if_the_broker_lists_it_not(
    monkeypatch: pytest.MonkeyPatch, exists: Callable[..., bool], expected: str | None
) -> None:
    monkeypatch.setattr(topics, "incarnation", _fails)
    monkeypatch.setattr(topics, "exists", exists)
    assert log_watch.look({}, topics.EVENTS, 1.0) == expected
