"""The REST face: the published POST /v1/candidates/job-match, problem+json, and its OpenAPI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from rest_compat.contract import apply_contract
from rest_compat.problems import install_problem_handlers
from rest_compat.routes import routes


def mount_rest(app: FastAPI) -> None:
    app.router.routes.extend(routes)
    install_problem_handlers(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = apply_contract(document, app.state.services.job_matches.limits)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
