"""Bet scorer: `events.taxonomy` → one `BetScored` per bet to change → `bets.state`."""

import logging
import time

from quixstreams import message_context

from betting import metrics, topics
from betting.streams import build_app, declare_topic
from functions.bet_scorer.publish import Publisher
from functions.bet_scorer.score import Scorer

log = logging.getLogger(__name__)


def main() -> None:
    app = build_app(topics.GROUPS.bet_scorer, uses=(topics.EVENTS, topics.BETS))
    events = declare_topic(app, topics.EVENTS, value_deserializer="bytes")
    # Declared so that it exists with the project's settings; records go out through
    # `Publisher`, which delivers a change's records before its offset can be committed.
    declare_topic(app, topics.BETS)
    scorer = Scorer()
    publisher = Publisher(topics.BETS)

    def score(value: bytes | None) -> None:
        context = message_context()
        started = time.perf_counter()
        sent = publisher.send_all(scorer(value, context.partition, context.offset))
        metrics.records_processed(topics.EVENTS, 1)
        if sent:
            log.info(
                "scored %s[%d]@%d: %d bet updates delivered in %.3f s",
                topics.EVENTS,
                context.partition,
                context.offset,
                sent,
                time.perf_counter() - started,
            )

    app.dataframe(events).update(score)
    try:
        app.run()
    finally:
        publisher.close()


if __name__ == "__main__":
    main()
