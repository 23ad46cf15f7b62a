"""Liveness, readiness and the metrics scrape: cheap, outside auth and rate limits."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway import migrate
from gateway.errors import ServiceUnavailable, Unauthenticated
from gateway.rate_limit import RedisBuckets
from gateway.services import Services


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    head = migrate.head_revision()
    revision = await services.database.run(migrate.current_revision)
    if revision != head:
        raise ServiceUnavailable(f"The database schema is at {revision}, not at {head}.")
    checks = {"database": "ok"}
    if isinstance(services.buckets, RedisBuckets):
        try:
            await services.buckets.ping()
        except Exception as exc:
            raise ServiceUnavailable("Redis is unreachable.") from exc
        checks["redis"] = "ok"
    return JSONResponse({"status": "ready", "checks": checks})


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    token = services.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise Unauthenticated("GET /metrics needs Authorization: Bearer <metrics token>.")
    return Response(
        services.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
