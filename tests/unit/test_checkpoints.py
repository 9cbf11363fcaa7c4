"""When a function checkpoints: soon once it has caught up, in big batches while a backlog
is queued (`betting.streams._checkpoint_when_caught_up`, over Quix Streams' own state)."""

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from betting import streams


@dataclass
class FakeCheckpoint:
    _commit_every: int = 100
    _total_offsets_processed: int = 0
    _created_at: float = field(default_factory=time.monotonic)


@dataclass
class FakeContext:
    checkpoint: FakeCheckpoint = field(default_factory=FakeCheckpoint)
    commits: list[dict[str, bool]] = field(default_factory=list)

    def commit_checkpoint(self, force: bool = False, revoking: bool = False) -> None:
        self.commits.append({"force": force, "revoking": revoking})


@dataclass
class FakeTracker:
    _message_consumed: bool = True


@dataclass
class FakeApp:
    _processing_context: FakeContext = field(default_factory=FakeContext)
    _run_tracker: FakeTracker = field(default_factory=FakeTracker)


@pytest.fixture
def app() -> FakeApp:
    fake = FakeApp()
    streams._checkpoint_when_caught_up(fake)  # type: ignore[arg-type]
    return fake


def _offer(app: FakeApp, **kwargs: Any) -> int:
    """Let the loop offer a checkpoint; how many reached Quix Streams' own."""
    before = len(app._processing_context.commits)
    app._processing_context.commit_checkpoint(**kwargs)
    return len(app._processing_context.commits) - before


def test_while_a_backlog_is_queued_it_does_not_checkpoint(app: FakeApp) -> None:
    app._processing_context.checkpoint._total_offsets_processed = 99
    assert _offer(app) == 0


def test_once_caught_up_it_checkpoints_as_its_interval_says(app: FakeApp) -> None:
    app._run_tracker._message_consumed = False  # the last poll found nothing
    assert _offer(app) == 1


def test_a_backlog_is_written_after_commit_every_messages(app: FakeApp) -> None:
    app._processing_context.checkpoint._total_offsets_processed = 100
    assert _offer(app) == 1


def test_a_backlog_that_never_ends_is_still_written_every_busy_interval(app: FakeApp) -> None:
    app._processing_context.checkpoint._created_at -= streams.BUSY_CHECKPOINT_S
    assert _offer(app) == 1


def test_a_forced_checkpoint_goes_through(app: FakeApp) -> None:
    assert _offer(app, force=True, revoking=True) == 1
    assert app._processing_context.commits[-1] == {"force": True, "revoking": True}
