"""The scorer's wait for the event writer: woken by the commit's notification, polled without."""

import threading
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import Session

from betting import topics
from betting.db import get_engine, session_scope
from betting.models import LogIncarnation, LogProgress
from functions.bet_scorer.score import ProgressWatcher
from functions.event_writer.apply import _record_progress
from tests.conftest import Stack

pytestmark = pytest.mark.integration


class _Watcher(ProgressWatcher):
    """A watcher that says when it has looked once and gone to sleep."""

    def __init__(self, fallback_poll_s: float) -> None:
        super().__init__(timeout_s=60)
        self.FALLBACK_POLL_S = fallback_poll_s
        self.sleeping = threading.Event()

    def _sleep(self, timeout_s: float) -> None:
        self.sleeping.set()
        super()._sleep(timeout_s)


def _stored_incarnation(topic: str = topics.EVENTS) -> str:
    with Session(get_engine()) as session:
        stored = session.get(LogIncarnation, topic)
        assert stored is not None  # `betting setup` recorded it
        return stored.incarnation


def _wait_in_background(
    watcher: ProgressWatcher, partition: int, offset: int, incarnation: str | None = None
) -> threading.Event:
    done = threading.Event()
    incarnation = incarnation or _stored_incarnation()

    def wait() -> None:
        with Session(get_engine()) as session:
            watcher.wait(session, partition, offset, incarnation)
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    return done


def _unused_partition() -> int:
    # log_progress is only a table: a partition the topic does not have keeps the functions out.
    return 1000 + uuid.uuid4().int % 1_000_000


def test_the_scorer_wakes_when_the_progress_it_waits_for_commits(stack: Stack) -> None:
    partition = _unused_partition()
    watcher = _Watcher(fallback_poll_s=3600)  # only the notification can wake it in time
    done = _wait_in_background(watcher, partition, offset=5)
    assert watcher.sleeping.wait(30)
    with session_scope() as session:
        _record_progress(session, topics.EVENTS, partition, 4)  # not far enough
    with session_scope() as session:
        _record_progress(session, topics.EVENTS, partition, 5)
    assert done.wait(30)


def test_the_scorer_still_sees_progress_that_came_without_a_notification(stack: Stack) -> None:
    partition = _unused_partition()
    watcher = _Watcher(fallback_poll_s=0.05)
    done = _wait_in_background(watcher, partition, offset=5)
    assert watcher.sleeping.wait(30)
    with session_scope() as session:
        session.add(LogProgress(topic=topics.EVENTS, partition=partition, applied_offset=5))
    assert done.wait(30)


def test_progress_seen_in_an_old_log_does_not_count_in_the_new_one(stack: Stack) -> None:
    # A topic of its own: its incarnation can change without touching the session's functions.
    topic, partition = f"{topics.EVENTS}.watch-test-{uuid.uuid4().hex[:8]}", 0
    with session_scope() as session:
        session.add(LogIncarnation(topic=topic, incarnation="old", recorded_at=datetime.now(UTC)))
        session.add(LogProgress(topic=topic, partition=partition, applied_offset=100))
    watcher = _Watcher(fallback_poll_s=0.05)
    watcher._topic = topic
    with Session(get_engine()) as session:
        watcher.wait(session, partition, 50, "old")  # seen, and remembered

    with session_scope() as session:  # the log starts over: what the rebase does
        session.execute(
            text("UPDATE log_incarnations SET incarnation = 'new' WHERE topic = :t"), {"t": topic}
        )
        session.execute(text("DELETE FROM log_progress WHERE topic = :t"), {"t": topic})
    done = _wait_in_background(watcher, partition, 5, "new")
    assert not done.wait(1.0), "the scorer went ahead on the old log's progress"
    with session_scope() as session:
        _record_progress(session, topic, partition, 5)
    assert done.wait(30)
