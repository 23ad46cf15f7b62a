"""The composition root: builds the core services and mounts both faces on one ASGI app."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from gateway import health
from gateway.logging_setup import configure_logging
from gateway.middleware import GatewayMiddleware
from gateway.services import Services, build_services
from gateway.settings import Settings, load_settings
from rest_compat import mount_rest
from rest_compat.contract import CONTRACT_PATH
from rest_compat.cors import ProblemCORSMiddleware
from rest_compat.direct import DirectExpressInterest
from schema import build_schema
from schema.graphiql import GraphiQLPage
from schema.view import GatewayGraphQL

GRAPHQL_PATH = "/graphql"
GC_GEN0_THRESHOLD = 50_000


def create_app(settings: Settings | None = None) -> GatewayMiddleware:
    settings = settings or load_settings()
    configure_logging(settings)
    services = build_services(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Objects built at start-up live for the whole process: move them out of the
        # collector's reach so request garbage is cheap to collect.
        gc.collect()
        gc.freeze()
        # Requests allocate many short-lived objects; the default gen-0 threshold (700) runs
        # the collector every few requests and lets full collections stall the event loop.
        # Requests leave no cyclic garbage (tests/test_request_garbage.py), so collections
        # are rare; when one runs, it frees little.
        gc.set_threshold(GC_GEN0_THRESHOLD, 50, 100)
        yield
        await services.close()

    app = FastAPI(
        title="jobmatch-gateway",
        version="1.0.0",
        description="Expression of interest in candidates for a job.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = services
    mount_rest(app)
    app.router.routes.extend(health.routes)
    graphql = _graphql_endpoint(app, services)
    cors = _cors_options(settings.cors_origins) if settings.cors_origins else None
    if cors:
        app.add_middleware(ProblemCORSMiddleware, public_url=settings.public_url, **cors)
        graphql = CORSMiddleware(graphql, **cors)
    # /graphql and the REST write render their own errors, so they need none of FastAPI's
    # routing and exception layers: the outer middleware hands their requests straight over.
    direct_routes = {
        GRAPHQL_PATH: graphql,
        CONTRACT_PATH: DirectExpressInterest(app, settings.public_url, cors),
    }
    return GatewayMiddleware(app, services.metrics, settings.max_body_bytes, direct_routes)


def _cors_options(origins: list[str]) -> dict[str, Any]:
    return {
        "allow_origins": origins,
        "allow_methods": ["GET", "POST", "OPTIONS"],
        "allow_headers": [
            "Content-Type",
            "X-API-Key",
            "Idempotency-Key",
            "X-Request-ID",
            "Apollo-Require-Preflight",
        ],
        "expose_headers": [
            "X-Request-ID",
            "Location",
            "Retry-After",
            "RateLimit",
            "RateLimit-Policy",
            "Idempotent-Replayed",
        ],
        "max_age": 600,
    }


def _graphql_endpoint(app: FastAPI, services: Services) -> ASGIApp:
    """The GraphQL view, and GraphiQL's assets mounted on ``app`` when they are served."""
    settings = services.settings
    page = None
    if settings.graphiql_enabled:
        page = GraphiQLPage(
            settings.graphiql_assets,
            settings.graphiql_assets_dir,
            graphql_path=GRAPHQL_PATH,
            assets_path=f"{GRAPHQL_PATH}/assets",
        )
        assets = page.asset_app()
        if assets is not None:
            app.mount(f"{GRAPHQL_PATH}/assets", assets, name="graphiql-assets")
    return GatewayGraphQL(services, page, schema=build_schema(settings), allow_queries_via_get=True)
