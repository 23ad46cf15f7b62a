"""POST /v1/candidates/job-match as published: every status, header and problem member."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from gateway.scopes import Scope
from tests.conftest import EXAMPLE_ID, count_rows

ROUTE = "/v1/candidates/job-match"
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance"}


def post(client, key, body, **headers):
    if key is not None:
        headers["X-API-Key"] = key
    return client.post(ROUTE, json=body, headers=headers)


def assert_problem(response, status, slug, title):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem.keys() >= PROBLEM_MEMBERS
    assert problem["status"] == status
    assert problem["type"] == f"http://testserver/problems/{slug}"
    assert problem["title"] == title
    assert isinstance(problem["detail"], str) and problem["detail"]
    request_id = response.headers["x-request-id"]
    assert problem["instance"] == f"urn:uuid:{request_id}"
    return problem


def test_contract_example_request_creates_job_match(client, key, candidates, engine):
    body = {
        "candidates": [{"publicId": EXAMPLE_ID}],
        "additionalNotes": "Candidates' experience aligns with our job requirements.",
    }
    response = post(client, key, body)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert list(payload) == ["message", "jobMatchId"]
    assert payload["message"] == "Your interest has been successfully recorded."
    assert payload["jobMatchId"].startswith("job-match-")
    assert len(payload["jobMatchId"]) >= len("job-match-") + 16  # unguessable random part
    assert response.headers["location"] == f"{ROUTE}/{payload['jobMatchId']}"
    assert count_rows(engine, "job_match") == 1
    assert count_rows(engine, "job_match_candidate") == 1

    record = client.get(response.headers["location"], headers={"X-API-Key": key})
    assert record.status_code == 200
    assert record.json()["jobMatchId"] == payload["jobMatchId"]
    assert record.json()["additionalNotes"] == body["additionalNotes"]
    assert record.json()["candidates"] == [{"publicId": EXAMPLE_ID}]
    assert record.json()["createdAt"].endswith("+00:00")


def test_candidates_keep_their_order_and_notes_are_optional(client, key, candidates):
    chosen = [candidates[5], candidates[2], candidates[9]]
    response = post(client, key, {"candidates": [{"publicId": c} for c in chosen]})
    assert response.status_code == 201
    record = client.get(response.headers["location"], headers={"x-api-key": key}).json()
    assert [c["publicId"] for c in record["candidates"]] == chosen
    assert record["additionalNotes"] is None
    explicit_null = post(
        client, key, {"candidates": [{"publicId": chosen[0]}], "additionalNotes": None}
    )
    assert explicit_null.status_code == 201


def test_unknown_body_fields_are_ignored_and_header_names_are_case_insensitive(
    client, key, candidates
):
    response = client.post(
        ROUTE,
        json={"candidates": [{"publicId": candidates[0]}], "jobId": "x", "extra": [1]},
        headers={"x-api-KEY": key},
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "pointers"),
    [
        ({}, ["/candidates"]),
        ({"candidates": []}, ["/candidates"]),
        ({"candidates": "ABC"}, ["/candidates"]),
        ({"candidates": [{"publicId": ""}]}, ["/candidates/0/publicId"]),
        ({"candidates": [{"publicId": "bad id!"}]}, ["/candidates/0/publicId"]),
        ({"candidates": [{"publicId": "x" * 65}]}, ["/candidates/0/publicId"]),
        ({"candidates": [{"publicId": 7}]}, ["/candidates/0/publicId"]),
        ({"candidates": [{}]}, ["/candidates/0/publicId"]),
        ({"candidates": ["ABC"]}, ["/candidates/0"]),
        ({"candidates": [{"publicId": "a", "name": "Ann"}]}, ["/candidates/0/name"]),
        ({"candidates": [{"publicId": "a"}, {"publicId": "a"}]}, ["/candidates/1/publicId"]),
        ({"candidates": [{"publicId": "a"}], "additionalNotes": 5}, ["/additionalNotes"]),
        ({"candidates": [{"publicId": "a"}], "additionalNotes": "n" * 2001}, ["/additionalNotes"]),
        ({"candidates": [{"publicId": "a"}], "additionalNotes": "a\u0000b"}, ["/additionalNotes"]),
        (
            {"candidates": [{"publicId": "ok"}, {"publicId": "no way"}], "additionalNotes": 1},
            ["/candidates/1/publicId", "/additionalNotes"],
        ),
    ],
)
def test_invalid_fields_are_all_named(client, key, engine, body, pointers):
    problem = assert_problem(post(client, key, body), 400, "invalid-request", "Invalid Request")
    assert [e["pointer"] for e in problem["errors"]] == pointers
    for pointer in pointers:
        assert pointer in problem["detail"]
    assert count_rows(engine, "job_match") == 0


def test_notes_length_counts_code_points(client, key, candidates):
    emoji_notes = "😀" * 2000  # 2000 code points, 8000 UTF-8 bytes
    response = post(
        client, key, {"candidates": [{"publicId": candidates[0]}], "additionalNotes": emoji_notes}
    )
    assert response.status_code == 201


def test_too_many_candidates(make_client, key, candidates):
    client = make_client(max_candidates=3)
    body = {"candidates": [{"publicId": c} for c in candidates[:4]]}
    problem = assert_problem(post(client, key, body), 400, "invalid-request", "Invalid Request")
    assert "at most 3" in problem["detail"]


@pytest.mark.parametrize(
    ("content", "content_type", "detail"),
    [
        (b"", "application/json", "missing"),
        (b"{not json", "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "JSON object"),
        (b'"text"', "application/json", "JSON object"),
        (b"candidates=ABC", "application/x-www-form-urlencoded", "Content-Type"),
        (b'{"candidates": []}', "text/plain", "Content-Type"),
    ],
)
def test_malformed_bodies_are_400(client, key, content, content_type, detail):
    response = client.post(
        ROUTE, content=content, headers={"X-API-Key": key, "Content-Type": content_type}
    )
    problem = assert_problem(response, 400, "invalid-request", "Invalid Request")
    assert detail in problem["detail"]


def test_body_over_64_kib_is_413(client, key):
    body = b'{"candidates": [], "additionalNotes": "' + b"x" * 70_000 + b'"}'
    response = client.post(
        ROUTE, content=body, headers={"X-API-Key": key, "Content-Type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large", "Payload Too Large")


def test_streamed_body_over_limit_is_413(client, key):
    def chunks():
        for _ in range(20):
            yield b"x" * 8192

    response = client.post(
        ROUTE, content=chunks(), headers={"X-API-Key": key, "Content-Type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large", "Payload Too Large")


@pytest.mark.parametrize("api_key", [None, "", "jmk_" + "x" * 43, "not-a-key", "jmk_" + "y" * 500])
def test_missing_or_unknown_key_is_401(client, candidates, api_key):
    response = post(client, api_key, {"candidates": [{"publicId": candidates[0]}]})
    assert_problem(response, 401, "authentication-required", "Authentication required")


def test_revoked_key_is_401(client, engine, keys, candidates):
    from gateway import api_keys

    key = keys.create()
    with engine.begin() as connection:
        key_id = api_keys.list_keys(connection)[-1].id
        api_keys.revoke_key(connection, key_id)
    problem = assert_problem(
        post(client, key, {"candidates": [{"publicId": candidates[0]}]}),
        401,
        "authentication-required",
        "Authentication required",
    )
    assert "revoked" in problem["detail"]


def test_expired_key_is_401(client, keys, candidates):
    key = keys.create(expires_in=timedelta(seconds=-1))
    problem = assert_problem(
        post(client, key, {"candidates": [{"publicId": candidates[0]}]}),
        401,
        "authentication-required",
        "Authentication required",
    )
    assert "expired" in problem["detail"]


def test_key_without_write_scope_is_403(client, keys, candidates, engine):
    key = keys.create(scopes=(Scope.JOB_MATCH_READ,))
    problem = assert_problem(
        post(client, key, {"candidates": [{"publicId": candidates[0]}]}),
        403,
        "forbidden",
        "Forbidden",
    )
    assert problem["detail"] == "You do not have permission to submit job matches."
    assert count_rows(engine, "job_match") == 0


def test_unknown_candidates_are_404_and_nothing_is_written(client, key, candidates, engine):
    body = {
        "candidates": [
            {"publicId": candidates[0]},
            {"publicId": "nobody-1"},
            {"publicId": "nobody-2"},
        ]
    }
    problem = assert_problem(
        post(client, key, body), 404, "candidate-not-found", "Resource not found"
    )
    assert problem["missingPublicIds"] == ["nobody-1", "nobody-2"]
    assert "nobody-1" in problem["detail"] and "nobody-2" in problem["detail"]
    assert count_rows(engine, "job_match") == 0
    assert count_rows(engine, "job_match_candidate") == 0


def test_problem_type_pages_resolve_to_html(client, key):
    problem = post(client, None, {"candidates": []}).json()
    page = client.get(problem["type"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Authentication required" in page.text and "X-API-Key" in page.text
    for slug in (
        "invalid-request",
        "forbidden",
        "candidate-not-found",
        "internal-error",
        "rate-limited",
        "idempotency-key-reused",
        "idempotency-in-flight",
    ):
        assert client.get(f"/problems/{slug}").status_code == 200


def test_unknown_route_is_404_problem(client):
    assert_problem(client.get("/nope"), 404, "route-not-found", "Resource not found")
    assert_problem(client.get("/problems/nope"), 404, "route-not-found", "Resource not found")


def test_wrong_method_is_405_with_allow(client):
    response = client.get(ROUTE)
    assert_problem(response, 405, "method-not-allowed", "Method Not Allowed")
    assert response.headers["allow"] == "POST"


def test_record_of_another_client_is_404(client, keys, candidates):
    own = keys.create("Client A")
    other = keys.create("Client B")
    created = post(client, own, {"candidates": [{"publicId": candidates[0]}]})
    location = created.headers["location"]
    assert client.get(location, headers={"X-API-Key": own}).status_code == 200
    assert_problem(
        client.get(location, headers={"X-API-Key": other}), 404, "not-found", "Resource not found"
    )


def test_record_needs_read_scope(client, keys, candidates):
    writer = keys.create("W", scopes=(Scope.JOB_MATCH_WRITE,))
    created = post(client, writer, {"candidates": [{"publicId": candidates[0]}]})
    response = client.get(created.headers["location"], headers={"X-API-Key": writer})
    problem = assert_problem(response, 403, "forbidden", "Forbidden")
    assert "read" in problem["detail"]


def test_unexpected_failure_is_generic_500(client, key, candidates, monkeypatch, caplog):
    from gateway import job_matches

    def explode(*args, **kwargs):
        raise RuntimeError("SELECT secret FROM internals -- should never be shown")

    monkeypatch.setattr(job_matches.JobMatchService, "_write", explode)
    response = post(client, key, {"candidates": [{"publicId": candidates[0]}]})
    problem = assert_problem(response, 500, "internal-error", "Service Unavailable")
    assert problem["detail"] == "An unexpected error occurred. Please try again later."
    assert "SELECT" not in response.text and "Traceback" not in response.text
    # The log has it once, with its traceback (the outer middleware does not log it again).
    logged = [r for r in caplog.records if r.exc_info and "SELECT secret" in str(r.exc_info[1])]
    assert len(logged) == 1 and logged[0].getMessage() == "unhandled error"


def test_request_id_from_client_is_the_problem_instance(client):
    request_id = str(uuid.uuid4())
    response = client.post(ROUTE, json={}, headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    assert response.json()["instance"] == f"urn:uuid:{request_id}"
