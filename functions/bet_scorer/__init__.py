"""Bet scorer: events.taxonomy → one BetScored per bet whose state must change → bets.state."""
