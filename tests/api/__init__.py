"""Every call and error of the HTTP contract (docs/API.md), on a real Postgres and broker."""
