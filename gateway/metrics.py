"""Prometheus metrics: the registry each server's `/metrics` shows, and request counts and
latency per route, which both servers keep. A server's own counters live with the code that
counts them (events published in `gateway.producer`, bets placed in `gateway.routers.bets`),
so a process registers only the series of the server it runs."""

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Our own registry, so /metrics shows the server's series and a re-import never clashes.
REGISTRY = CollectorRegistry()
_LABELS = ("method", "route", "status")
# The method label takes these or "other": a client chooses the method, and each new value
# would be a new series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter("gateway_requests_total", "HTTP requests answered.", _LABELS, registry=REGISTRY)
LATENCY = Histogram(
    "gateway_request_duration_seconds",
    "Time to answer an HTTP request.",
    _LABELS,
    registry=REGISTRY,
)


class MetricsMiddleware:
    """Counts and times every request, labelled by the route template rather than the path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            # Raw paths carry ids: one series per id would swamp Prometheus.
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in METHODS else "other"
            labels = (method, route, str(status))
            REQUESTS.labels(*labels).inc()
            LATENCY.labels(*labels).observe(time.perf_counter() - started)
