"""Probes and metrics for whoever runs a server: the same three endpoints on both.

Readiness differs per server: each names what it must reach (`create_app(readiness=...)`), as
FastAPI dependencies answering whether that one thing is reachable now.

Why /readyz checks what it checks: a pod that cannot reach Postgres (or, for the line provider,
the broker) answers every request with a 503, so it should get no traffic, and one that never
reached them since it started is not ready at all. But Postgres and the broker are shared by
every replica: if each pod left its Service on the first failed check, a blip of a shared
dependency would empty the Service at once, and clients would get connection errors from the
proxy instead of the servers' own 503s with a reason. So a dependency counts as down only after
it has failed for longer than BETTING_READINESS_GRACE_S since it last answered. Liveness
(/healthz) checks only the process itself: restarting pods never brings a database back.
"""

import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from betting.settings import get_settings
from gateway import metrics
from gateway.deps import EngineDep
from gateway.schemas import Status, errors

log = logging.getLogger(__name__)

# A FastAPI dependency: whether one thing the server needs answers now (the log says why not).
ReadinessCheck = Callable[..., bool]


def database_reachable(engine: EngineDep) -> bool:
    """Postgres answers a query."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # any failure means not ready; the log keeps the reason
        log.warning("readiness: database unavailable", exc_info=True)
        return False
    return True


class GraceWindow:
    """Whether a dependency counts as down: it has not answered since the process started, or
    not for longer than the grace period (BETTING_READINESS_GRACE_S)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_ok: dict[str, float] = {}

    def down(self, name: str, ok: bool, grace_s: float) -> bool:
        now = self._clock()
        if ok:
            self._last_ok[name] = now
            return False
        last_ok = self._last_ok.get(name)
        return last_ok is None or now - last_ok >= grace_s


def _unreachable(checks: Mapping[str, ReadinessCheck]) -> Callable[..., list[str]]:
    """One dependency that runs every check and answers the names of those that count as
    down (`GraceWindow`)."""
    window = GraceWindow()

    def failed(**reachable: bool) -> list[str]:
        grace_s = get_settings().readiness_grace_s
        return [name for name, ok in reachable.items() if window.down(name, ok, grace_s)]

    # FastAPI reads the parameters from the signature: one `Depends` per check.
    failed.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=Depends(check))
            for name, check in checks.items()
        ]
    )
    return failed


async def healthz() -> Status:
    """The process is up."""
    return Status()


def prometheus_metrics() -> Response:
    """Prometheus text format."""
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


def operations_router(readiness: Mapping[str, ReadinessCheck]) -> APIRouter:
    """`/healthz`, `/readyz` (ready when every one of `readiness` is reachable), `/metrics`."""
    router = APIRouter(tags=["operations"])
    router.add_api_route("/healthz", healthz, methods=["GET"])
    unreachable_now = Depends(_unreachable(readiness))

    def readyz(unreachable: Annotated[list[str], unreachable_now]) -> Status:
        if unreachable:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, f"unavailable: {', '.join(unreachable)}"
            )
        return Status()

    needs = " and the ".join(readiness)
    verb = "is" if len(readiness) == 1 else "are"
    router.add_api_route(
        "/readyz",
        readyz,
        methods=["GET"],
        responses=errors(503),
        description=f"The {needs} {verb} reachable.",
    )
    router.add_api_route(
        "/metrics",
        prometheus_metrics,
        methods=["GET"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
    )
    return router
