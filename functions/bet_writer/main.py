"""Bet writer: `bets.state` → bet rows, in batches read while the previous one is written."""

from betting import topics
from betting.batches import run_batch_writer
from functions.bet_writer.apply import apply_bet_updates


def main() -> None:
    run_batch_writer(topics.GROUPS.bet_writer, topics.BETS, apply_bet_updates)


if __name__ == "__main__":
    main()
