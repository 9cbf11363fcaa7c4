"""Bet scorer: `events.taxonomy` → one `BetScored` per bet to change → `bets.state`."""

from collections.abc import Iterator
from typing import Any

from quixstreams import message_context

from betting import topics
from betting.streams import build_app, declare_topic
from functions.bet_scorer.score import Scorer


def main() -> None:
    app = build_app(topics.GROUPS.bet_scorer)
    events = declare_topic(app, topics.EVENTS, value_deserializer="bytes")
    bets = declare_topic(app, topics.BETS, key_serializer="str", value_serializer="json")
    scorer = Scorer()

    def score(value: bytes | None) -> Iterator[dict[str, Any]]:
        context = message_context()
        for update in scorer(value, context.partition, context.offset):
            yield update.model_dump(mode="json")

    sdf = app.dataframe(events).apply(score, expand=True)
    sdf.to_topic(bets, key=lambda update: update["bet_id"])
    app.run()


if __name__ == "__main__":
    main()
