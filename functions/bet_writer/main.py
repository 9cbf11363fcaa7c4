"""Bet writer: `bets.state` → bet rows, one set-based write per partition per checkpoint."""

from betting import topics
from betting.streams import run_writer
from functions.bet_writer.apply import apply_bet_updates


def main() -> None:
    run_writer(topics.GROUPS.bet_writer, topics.BETS, apply_bet_updates)


if __name__ == "__main__":
    main()
