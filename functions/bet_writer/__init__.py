"""Bet writer: bets.state → bet rows, a batch read while the last is written."""
