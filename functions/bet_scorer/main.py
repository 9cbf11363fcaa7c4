"""Bet scorer: `events.taxonomy` → one `BetScored` per bet to change → `bets.state`."""

from collections.abc import Iterator

from quixstreams import message_context
from quixstreams.models.serializers import SerializationContext, Serializer

from betting import metrics, topics
from betting.streams import build_app, declare_topic
from functions.bet_scorer.score import ScoredBet, Scorer


class _Encoded(Serializer):
    """Writes a `ScoredBet`'s value, which the scorer has already encoded."""

    def __call__(self, value: ScoredBet, ctx: SerializationContext) -> bytes:
        return value.value


def main() -> None:
    app = build_app(topics.GROUPS.bet_scorer)
    events = declare_topic(app, topics.EVENTS, value_deserializer="bytes")
    bets = declare_topic(app, topics.BETS, key_serializer="str", value_serializer=_Encoded())
    scorer = Scorer()

    def score(value: bytes | None) -> Iterator[ScoredBet]:
        context = message_context()
        yield from scorer(value, context.partition, context.offset)
        metrics.records_processed(topics.EVENTS, 1)

    sdf = app.dataframe(events).apply(score, expand=True)
    sdf.to_topic(bets, key=lambda scored: scored.key)
    app.run()


if __name__ == "__main__":
    main()
