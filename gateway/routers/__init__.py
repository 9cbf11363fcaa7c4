"""The servers' routers: events (the line provider), bets (the bet maker), operations (both)."""
