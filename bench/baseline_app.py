"""The bare baseline the gateway is measured against (benchmark only, never part of the product).

A minimal Starlette app over stdlib ``sqlite3`` doing the same work as the gateway's write
route on the same database file and schema: look the API key up by its SHA-256 hash, check
that every candidate exists in one query, insert the ``job_match`` row and its
``job_match_candidate`` links in one transaction, and answer 201 with the same JSON. No
auth cache, no rate limit, no logging, no metrics, no validation beyond what the work needs.

It also serves ``GET /baseline/job-matches?first=50`` (newest first, candidates in a second
query) so that the GraphQL ``jobMatches`` read has a bare reference too.

Run: ``BENCH_DB=/path/db.sqlite3 uvicorn bench.baseline_app:app --port 8100``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MESSAGE = "Your interest has been successfully recorded."


def _connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA busy_timeout=5000")
    return connection


db = _connect(os.environ.get("BENCH_DB", "bench.sqlite3"))


def _problem(status: int, title: str) -> JSONResponse:
    return JSONResponse({"title": title, "status": status}, status_code=status)


def _client_id(request: Request) -> int | None:
    raw = request.headers.get("x-api-key")
    if not raw:
        return None
    key_hash = hashlib.sha256(raw.encode()).hexdigest()
    row = db.execute(
        "SELECT client_id FROM api_key WHERE key_hash = ? AND revoked_at IS NULL", (key_hash,)
    ).fetchone()
    return row[0] if row else None


async def express_interest(request: Request) -> JSONResponse:
    client_id = _client_id(request)
    if client_id is None:
        return _problem(401, "Authentication required")
    try:
        body = json.loads(await request.body())
        ids = [c["publicId"] for c in body["candidates"]]
        notes = body.get("additionalNotes")
    except (ValueError, KeyError, TypeError):
        return _problem(400, "Invalid Request")
    if not ids:
        return _problem(400, "Invalid Request")
    marks = ",".join("?" * len(ids))
    found = dict(
        db.execute(f"SELECT public_id, id FROM candidate WHERE public_id IN ({marks})", ids)
    )
    if len(found) != len(ids):
        return _problem(404, "Resource not found")
    public_id = "job-match-" + secrets.token_urlsafe(12)
    # The same text SQLAlchemy's SQLite DateTime stores.
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    db.execute("BEGIN IMMEDIATE")
    try:
        row_id = db.execute(
            "INSERT INTO job_match (public_id, client_id, additional_notes, created_at)"
            " VALUES (?, ?, ?, ?)",
            (public_id, client_id, notes, now),
        ).lastrowid
        db.executemany(
            "INSERT INTO job_match_candidate (job_match_id, position, candidate_id)"
            " VALUES (?, ?, ?)",
            [(row_id, position, found[cid]) for position, cid in enumerate(ids)],
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return JSONResponse({"message": MESSAGE, "jobMatchId": public_id}, status_code=201)


async def job_matches(request: Request) -> JSONResponse:
    client_id = _client_id(request)
    if client_id is None:
        return _problem(401, "Authentication required")
    first = min(int(request.query_params.get("first", "50")), 100)
    rows = db.execute(
        "SELECT id, public_id, created_at FROM job_match WHERE client_id = ?"
        " ORDER BY id DESC LIMIT ?",
        (client_id, first + 1),
    ).fetchall()
    page = rows[:first]
    by_id: dict[int, list[dict[str, str]]] = {row[0]: [] for row in page}
    if page:
        marks = ",".join("?" * len(page))
        for job_match_id, public_id in db.execute(
            "SELECT l.job_match_id, c.public_id FROM job_match_candidate l"
            f" JOIN candidate c ON c.id = l.candidate_id WHERE l.job_match_id IN ({marks})"
            " ORDER BY l.job_match_id, l.position",
            list(by_id),
        ):
            by_id[job_match_id].append({"publicId": public_id})
    edges = [
        {
            "cursor": str(row[0]),
            "node": {"id": row[1], "createdAt": row[2], "candidates": by_id[row[0]]},
        }
        for row in page
    ]
    return JSONResponse(
        {
            "edges": edges,
            "pageInfo": {
                "hasNextPage": len(rows) > first,
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
        }
    )


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/v1/candidates/job-match", express_interest, methods=["POST"]),
        Route("/baseline/job-matches", job_matches, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
)
