"""The bet writer's loop (`betting.batches.BatchLoop`) on the session's real broker: it reads
the next batch while the last is written, commits a batch's offsets only once it is written,
writes a batch again after a failure worth a retry, reads again after a new log, and stops on a
failure that is not.

In-process, on a topic of each test's own, with a recording writer standing in for Postgres.
"""

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from quixstreams import Application
from quixstreams.sinks import SinkBackpressureError

from betting.batches import BatchLoop
from betting.streams import LogRecord, ReadAgain
from tests.conftest import Stack
from tests.integration.conftest import committed_offset, wait_for

PARTITIONS = 3


@dataclass
class Recorder:
    """Records each batch it is given; `fail` decides, per call, what a write raises."""

    fail: Callable[[int], Exception | None] = lambda _: None
    batches: list[list[LogRecord]] = field(default_factory=list)
    written: list[LogRecord] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    block: bool = False

    def write(self, topic: str, records: list[LogRecord]) -> None:
        call = len(self.batches)
        self.batches.append(records)
        if self.block:
            assert self.release.wait(60), "the test never released the writes"
        failure = self.fail(call)
        if failure is not None:
            raise failure
        self.written += records

    def values(self) -> list[bytes | None]:
        return sorted(record.value for record in self.written)  # type: ignore[type-var]


@dataclass
class Run:
    topic: str
    group: str
    brokers: str
    recorder: Recorder
    loop: BatchLoop
    thread: threading.Thread
    error: list[BaseException]

    def produce(self, count: int, start: int = 0, partition: int = -1) -> list[bytes]:
        """`count` records, spread over the partitions by key unless `partition` is given."""
        producer = Producer({"bootstrap.servers": self.brokers})
        values = [f"{n:06d}".encode() for n in range(start, start + count)]
        for value in values:
            producer.produce(self.topic, key=value, value=value, partition=partition)
        assert producer.flush(10) == 0
        return values

    def committed(self) -> int:
        """Offsets committed over all partitions (a partition with none counts 0)."""
        return sum(
            max(committed_offset(self.brokers, self.group, self.topic, p), 0)
            for p in range(PARTITIONS)
        )

    def finish(self) -> None:
        self.loop.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture
def start(stack: Stack) -> Iterator[Callable[[Recorder], Run]]:
    runs: list[Run] = []
    brokers = stack.broker.address

    def start_loop(recorder: Recorder) -> Run:
        topic = f"batch-loop-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": brokers})
        for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
            future.result(timeout=10)
        group = f"{topic}-group"
        app = Application(
            broker_address=brokers,
            consumer_group=group,
            auto_offset_reset="earliest",
            # The broker holds a group's first join for half the session timeout.
            consumer_extra_config={"session.timeout.ms": 2000, "heartbeat.interval.ms": 500},
        )
        loop = BatchLoop(app, topic, recorder)
        error: list[BaseException] = []

        def run() -> None:
            try:
                loop.run()
            except BaseException as exc:
                error.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        runs.append(Run(topic, group, brokers, recorder, loop, thread, error))
        return runs[-1]

    yield start_loop
    for run in runs:
        run.recorder.release.set()
        run.loop.stop()
        run.thread.join(30)


def test_partitions_are_written_side_by_side_while_the_next_batches_are_read(
    start: Callable[[Recorder], Run],
) -> None:
    run = start(Recorder(block=True))
    first = run.produce(100)
    # Each partition's batch is with the writer at once, none waiting for another's...
    wait_for(lambda: len(run.recorder.batches) == PARTITIONS or None, 30, "a write each")
    second = run.produce(300, start=100)
    # ...and while they are being written, the loop reads all that came after them...
    behind = 400 - sum(map(len, run.recorder.batches))
    wait_for(lambda: run.loop.read_ahead == behind or None, 30, "the rest read ahead")
    assert len(run.recorder.batches) == PARTITIONS
    # ...and commits nothing: no batch is written yet.
    assert run.committed() == 0
    run.recorder.release.set()
    wait_for(lambda: run.recorder.values() == sorted(first + second), 30, "every record written")
    wait_for(lambda: run.committed() == 400, 30, "every offset committed")
    assert {len({r.partition for r in batch}) for batch in run.recorder.batches} == {1}
    run.finish()
    assert run.error == []


def test_a_write_worth_a_retry_is_written_again_and_only_then_committed(
    start: Callable[[Recorder], Run],
) -> None:
    failures = 3
    run = start(Recorder(fail=lambda call: SinkBackpressureError(0.2) if call < failures else None))
    values = run.produce(50, partition=1)
    wait_for(lambda: len(run.recorder.batches) >= failures, 30, "the failed writes")
    assert run.recorder.written == [] and run.committed() == 0
    wait_for(lambda: run.recorder.values() == sorted(values), 30, "the batch written again")
    wait_for(lambda: run.committed() == 50, 30, "its offsets committed")
    # The same batch was offered each time: nothing read meanwhile was lost or taken twice.
    assert all(batch == run.recorder.batches[0] for batch in run.recorder.batches[:failures])
    run.finish()
    assert run.error == []


def test_a_new_log_reads_again_from_the_committed_positions(
    start: Callable[[Recorder], Run],
) -> None:
    run = start(Recorder(fail=lambda call: ReadAgain(0.1) if call == 1 else None))
    first = run.produce(20, partition=2)
    wait_for(lambda: run.committed() == 20, 30, "the first batch committed")
    second = run.produce(30, start=20, partition=2)
    wait_for(lambda: len(run.recorder.batches) >= 3, 30, "the batch read again")
    wait_for(lambda: run.recorder.values() == sorted(first + second), 30, "everything written")
    wait_for(lambda: run.committed() == 50, 30)
    # What the refused batch held was read again from the log, not kept from before.
    again = {r.value for batch in run.recorder.batches[2:] for r in batch}
    assert {r.value for r in run.recorder.batches[1]} <= again
    run.finish()
    assert run.error == []


def test_a_write_that_fails_for_good_stops_the_loop_and_commits_nothing(
    start: Callable[[Recorder], Run],
) -> None:
    run = start(Recorder(fail=lambda _: RuntimeError("a bug in the apply step")))
    run.produce(10)
    run.thread.join(60)
    assert not run.thread.is_alive()
    assert [str(e) for e in run.error] == ["a bug in the apply step"]
    assert run.committed() == 0


def test_stopping_writes_and_commits_what_was_read(start: Callable[[Recorder], Run]) -> None:
    run = start(Recorder())
    values = run.produce(40)
    wait_for(lambda: len(run.recorder.written) + run.loop.read_ahead == 40 or None, 30)
    run.finish()
    assert run.recorder.values() == sorted(values)
    assert run.committed() == 40
