"""Idempotency-Key on both faces: replay, reuse with another body, failures store nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import count_rows
from tests.test_graphql import EXPRESS, gql, only_error
from tests.test_rest import ROUTE, assert_problem


def rest(client, key, ids, notes=None, idempotency_key=None):
    headers = {"X-API-Key": key}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    body = {"candidates": [{"publicId": i} for i in ids], "additionalNotes": notes}
    return client.post(ROUTE, json=body, headers=headers)


def graphql(client, key, ids, notes=None, header=None, field=None):
    variables = {
        "input": {
            "candidates": [{"publicId": i} for i in ids],
            "additionalNotes": notes,
            "idempotencyKey": field,
        }
    }
    return gql(
        client,
        key,
        EXPRESS,
        variables,
        headers={"Idempotency-Key": header} if header is not None else None,
    )


def test_rest_retry_replays_the_first_result(client, key, candidates, engine):
    first = rest(client, key, candidates[:2], "n", "retry-1")
    again = rest(client, key, candidates[:2], "n", "retry-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert count_rows(engine, "job_match") == 1
    assert count_rows(engine, "idempotency_record") == 1


def test_graphql_input_key_and_header_are_one_thing(client, key, candidates, engine):
    by_field = graphql(client, key, candidates[:1], field="gql-1").json()["data"]
    by_header = graphql(client, key, candidates[:1], header="gql-1").json()["data"]
    assert by_field == by_header
    both_same = graphql(client, key, candidates[:1], header="gql-1", field="gql-1")
    assert both_same.json()["data"] == by_field
    assert count_rows(engine, "job_match") == 1
    error = only_error(graphql(client, key, candidates[:1], header="gql-1", field="other"))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"][0]["path"] == ["input", "idempotencyKey"]


def test_a_rest_success_is_replayed_to_a_graphql_retry(client, key, candidates):
    job_match_id = rest(client, key, candidates[:1], None, "cross-1").json()["jobMatchId"]
    data = graphql(client, key, candidates[:1], header="cross-1").json()["data"]
    assert data["expressInterest"]["jobMatchId"] == job_match_id
    assert data["expressInterest"]["jobMatch"]["candidates"] == [{"publicId": candidates[0]}]


def test_same_key_with_another_body_is_422(client, key, candidates, engine):
    assert rest(client, key, candidates[:1], "a", "reuse-1").status_code == 201
    problem = assert_problem(
        rest(client, key, candidates[:1], "b", "reuse-1"),
        422,
        "idempotency-key-reused",
        "Idempotency-Key reused",
    )
    assert "different" in problem["detail"]
    error = only_error(graphql(client, key, candidates[1:2], header="reuse-1"))
    assert error["extensions"] == {"code": "IDEMPOTENCY_KEY_REUSED", "status": 422}
    assert count_rows(engine, "job_match") == 1


def test_failures_store_nothing_so_the_client_can_fix_and_retry(client, key, candidates, engine):
    assert rest(client, key, [candidates[0], "ghost"], None, "fix-1").status_code == 404
    assert rest(client, key, ["bad id"], None, "fix-1").status_code == 400
    assert count_rows(engine, "idempotency_record") == 0
    fixed = rest(client, key, [candidates[0]], None, "fix-1")
    assert fixed.status_code == 201 and "idempotent-replayed" not in fixed.headers


def test_keys_are_scoped_to_the_client(client, keys, candidates, engine):
    alice, bob = keys.create("Alice"), keys.create("Bob")
    a = rest(client, alice, candidates[:1], None, "shared-key")
    b = rest(client, bob, candidates[:1], None, "shared-key")
    assert a.status_code == b.status_code == 201
    assert a.json()["jobMatchId"] != b.json()["jobMatchId"]
    assert "idempotent-replayed" not in b.headers
    assert count_rows(engine, "job_match") == 2


@pytest.mark.parametrize("bad_key", ["", "x" * 256, "tab\tkey", "ünïcode"])
def test_invalid_keys_are_400(client, key, candidates, bad_key):
    response = client.post(
        ROUTE,
        json={"candidates": [{"publicId": candidates[0]}]},
        headers={"X-API-Key": key, "Idempotency-Key": bad_key.encode()},
    )
    problem = assert_problem(response, 400, "invalid-request", "Invalid Request")
    assert problem["errors"][0]["pointer"] == "/idempotencyKey"


def test_records_expire(make_client, key, candidates, engine):
    client = make_client(idempotency_ttl_hours=1)
    first = rest(client, key, candidates[:1], None, "old-key").json()["jobMatchId"]
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE idempotency_record SET expires_at = :past"), {"past": _past()}
        )
    second = rest(client, key, candidates[:1], None, "old-key")
    assert second.status_code == 201 and "idempotent-replayed" not in second.headers
    assert second.json()["jobMatchId"] != first
    assert count_rows(engine, "idempotency_record") == 1  # the expired record was replaced


def _past():
    from gateway.models import utcnow

    return utcnow() - timedelta(seconds=1)
