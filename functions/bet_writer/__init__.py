"""Bet writer: bets.state → bet rows, one set-based write per partition per checkpoint."""
