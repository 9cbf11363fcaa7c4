"""The gateway's routers, one per resource."""
