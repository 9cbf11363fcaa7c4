"""Bet writer: `bets.state` → bet rows, one set-based write per partition per checkpoint."""

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
from functions.bet_writer.apply import apply_bet_updates

log = logging.getLogger(__name__)


class BetStateSink(BatchingSink):
    """Writes a partition's batch in one transaction, before its offsets are committed."""

    def __init__(self, dead_letters: DeadLetters) -> None:
        super().__init__()
        self._dead_letters = dead_letters

    def write(self, batch: SinkBatch) -> None:
        with retry_on_database_error(), session_scope() as session:
            changed, rejected = apply_bet_updates(session=session, records=records_of(batch))
            for item in rejected:
                self._dead_letters.send(item.record, item.reason)
            self._dead_letters.flush()
        log.debug(
            "%s[%d]: %d updates, %d bets changed", batch.topic, batch.partition, batch.size, changed
        )


def main() -> None:
    app = build_app(topics.GROUPS.bet_writer)
    bets = declare_topic(app, topics.BETS, value_deserializer="bytes")
    sink = BetStateSink(DeadLetters(app, topics.BETS, topics.GROUPS.bet_writer))
    app.dataframe(bets).sink(sink)
    app.run()


if __name__ == "__main__":
    main()
