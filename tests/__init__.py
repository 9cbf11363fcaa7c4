"""The test suite: unit (no servers), api and integration (the session's Postgres and broker),
deploy (static checks of the deploy files, run by `make deploy-check`)."""
