"""The two HTTP servers on one foundation (`gateway.app`): the line provider (`/events`,
`gateway.line_provider`) and the bet maker (`/bets`, `gateway.bet_maker`)."""
