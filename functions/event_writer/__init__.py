"""Event writer: events.taxonomy → event rows, in log order, idempotently."""
