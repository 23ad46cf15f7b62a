"""POST /v1/candidates/job-match and the record it creates, over the core service.

Plain Starlette endpoints: the request model lives in the published contract (see
``contract.py``), so FastAPI's per-request parameter machinery would only add cost.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import NotFound
from gateway.idempotency import IDEMPOTENCY_HEADER
from gateway.job_matches import JobMatchView
from gateway.request_state import RequestState, current_request
from gateway.scopes import Scope
from gateway.services import Services
from gateway.validation import MISSING
from rest_compat.body import read_json_object
from rest_compat.contract import CONTRACT_PATH, RECORD_PATH


def _context(request: Request) -> tuple[Services, RequestState]:
    state = current_request()
    assert state is not None, "the request middleware must run first"
    return request.app.state.services, state


def _json(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


async def express_interest(request: Request) -> Response:
    services, state = _context(request)
    principal = await services.guard.admit(
        state, request.headers.get("x-api-key"), Scope.JOB_MATCH_WRITE
    )
    body = await read_json_object(request)
    outcome = await services.job_matches.express_interest(
        principal,
        body.get("candidates", MISSING),
        body.get("additionalNotes", MISSING),
        request.headers.get(IDEMPOTENCY_HEADER),
    )
    state.idempotent_replay = outcome.replayed
    job_match_id = outcome.job_match.public_id
    return _json(
        {"message": outcome.message, "jobMatchId": job_match_id},
        status=201,
        headers={"Location": f"{CONTRACT_PATH}/{job_match_id}"},
    )


def record_body(view: JobMatchView, candidate_ids: tuple[str, ...]) -> dict[str, object]:
    return {
        "jobMatchId": view.public_id,
        "additionalNotes": view.additional_notes,
        "createdAt": view.created_at.isoformat(),
        "candidates": [{"publicId": public_id} for public_id in candidate_ids],
    }


async def read_job_match(request: Request) -> Response:
    services, state = _context(request)
    principal = await services.guard.admit(
        state, request.headers.get("x-api-key"), Scope.JOB_MATCH_READ
    )
    job_match_id = request.path_params["jobMatchId"]
    view = await services.job_matches.find(principal, job_match_id)
    if view is None:
        raise NotFound(f"Job match {job_match_id} was not found.")
    candidates = await services.job_matches.candidates_of([view.row_id])
    return _json(record_body(view, candidates[view.row_id]))


routes = [
    Route(CONTRACT_PATH, express_interest, methods=["POST"], name="express_interest"),
    Route(RECORD_PATH, read_job_match, methods=["GET"], name="read_job_match"),
]
