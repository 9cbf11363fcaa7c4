"""Event writer: `events.taxonomy` → event rows, batched at each checkpoint."""

import logging

from quixstreams.sinks import BatchingSink, SinkBatch

from betting import topics
from betting.db import session_scope
from betting.streams import (
    DeadLetters,
    build_app,
    declare_topic,
    records_of,
    retry_on_database_error,
)
from functions.event_writer.apply import apply_event_messages

log = logging.getLogger(__name__)


class EventSink(BatchingSink):
    """Writes a partition's batch in one transaction, before its offsets are committed."""

    def __init__(self, dead_letters: DeadLetters) -> None:
        super().__init__()
        self._dead_letters = dead_letters

    def write(self, batch: SinkBatch) -> None:
        records = records_of(batch)
        with retry_on_database_error(), session_scope() as session:
            rejected = apply_event_messages(session=session, topic=batch.topic, records=records)
            # Dead letters are delivered before the transaction commits: a crash in between
            # replays the batch, which dead-letters them again rather than losing them.
            for item in rejected:
                self._dead_letters.send(item.record, item.reason)
            self._dead_letters.flush()
        log.info(
            "applied %s[%d] up to offset %d: %d messages, %d dead-lettered",
            batch.topic,
            batch.partition,
            batch.size and records[-1].offset,
            batch.size,
            len(rejected),
        )


def main() -> None:
    app = build_app(topics.GROUPS.event_writer)
    events = declare_topic(app, topics.EVENTS, value_deserializer="bytes")
    sink = EventSink(DeadLetters(app, topics.EVENTS, topics.GROUPS.event_writer))
    app.dataframe(events).sink(sink)
    app.run()


if __name__ == "__main__":
    main()
