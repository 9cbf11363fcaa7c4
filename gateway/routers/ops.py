"""Probes and metrics for whoever runs the gateway."""

import logging

from fastapi import APIRouter, HTTPException, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from gateway import metrics
from gateway.deps import EngineDep, PublisherDep
from gateway.producer import BrokerUnavailable
from gateway.schemas import Status, errors

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> Status:
    """The process is up."""
    return Status()


@router.get("/readyz", responses=errors(503))
def readyz(engine: EngineDep, publisher: PublisherDep) -> Status:
    """The database and the broker are reachable."""
    failed = []
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # any failure means not ready; the log keeps the reason
        log.warning("readiness: database unavailable", exc_info=True)
        failed.append("database")
    try:
        publisher.ping()
    except BrokerUnavailable:
        log.warning("readiness: broker unavailable", exc_info=True)
        failed.append("broker")
    if failed:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"unavailable: {', '.join(failed)}"
        )
    return Status()


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
def prometheus_metrics() -> Response:
    """Prometheus text format."""
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
