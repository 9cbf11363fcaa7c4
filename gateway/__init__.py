"""The HTTP gateway: the events and bets APIs on top of the shared `betting` package."""
