"""Bet writer: `bets.state` → bet rows, one set-based write per partition per checkpoint."""

from betting import topics
from betting.streams import DatabaseSink, DeadLetters, build_app, declare_topic
from functions.bet_writer.apply import apply_bet_updates


def main() -> None:
    app = build_app(topics.GROUPS.bet_writer)
    bets = declare_topic(app, topics.BETS, value_deserializer="bytes")
    dead_letters = DeadLetters(app, topics.BETS, topics.GROUPS.bet_writer)
    app.dataframe(bets).sink(DatabaseSink(apply_bet_updates, dead_letters))
    app.run()


if __name__ == "__main__":
    main()
