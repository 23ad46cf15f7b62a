"""The two faces are one resolver: the same input gives the same outcome and stored state."""

from __future__ import annotations

import pytest

from gateway.scopes import Scope
from tests.conftest import EXAMPLE_ID, Keys, count_rows
from tests.test_graphql import EXPRESS, gql
from tests.test_rest import ROUTE

KNOWN = EXAMPLE_ID
CASES = {
    "valid": ({"candidates": [{"publicId": KNOWN}], "additionalNotes": "hi"}, "full"),
    "valid without notes": ({"candidates": [{"publicId": KNOWN}]}, "full"),
    "empty candidates": ({"candidates": []}, "full"),
    "bad id": ({"candidates": [{"publicId": "no spaces"}]}, "full"),
    "long id": ({"candidates": [{"publicId": "x" * 65}]}, "full"),
    "duplicate ids": ({"candidates": [{"publicId": KNOWN}, {"publicId": KNOWN}]}, "full"),
    "long notes": ({"candidates": [{"publicId": KNOWN}], "additionalNotes": "n" * 2001}, "full"),
    "too many": ({"candidates": [{"publicId": f"id-{i}"} for i in range(101)]}, "full"),
    "unknown candidate": ({"candidates": [{"publicId": KNOWN}, {"publicId": "ghost"}]}, "full"),
    "no key": ({"candidates": [{"publicId": KNOWN}]}, None),
    "bad key": ({"candidates": [{"publicId": KNOWN}]}, "jmk_not-a-real-key"),
    "read-only key": ({"candidates": [{"publicId": KNOWN}]}, "read"),
}


def _key(keys: Keys, kind: str | None) -> str | None:
    if kind == "full":
        return keys.create("Differential")
    if kind == "read":
        return keys.create("Reader", scopes=(Scope.JOB_MATCH_READ,))
    return kind


def _state(engine):
    return {
        table: count_rows(engine, table)
        for table in ("job_match", "job_match_candidate", "idempotency_record")
    }


@pytest.mark.parametrize("case", list(CASES))
def test_rest_and_graphql_agree(client, keys, candidates, engine, case):
    body, key_kind = CASES[case]
    key = _key(keys, key_kind)
    headers = {"X-API-Key": key} if key else {}

    before = _state(engine)
    rest = client.post(ROUTE, json=body, headers=headers)
    after_rest = _state(engine)

    graphql_input = {
        "candidates": body["candidates"],
        "additionalNotes": body.get("additionalNotes"),
    }
    graphql = gql(client, key, EXPRESS, {"input": graphql_input}).json()
    after_graphql = _state(engine)

    if rest.status_code == 201:
        assert "errors" not in graphql
        assert graphql["data"]["expressInterest"]["message"] == rest.json()["message"]
    else:
        error = graphql["errors"][0]
        assert error["extensions"]["status"] == rest.status_code, (rest.json(), error)
        problem = rest.json()
        if "errors" in problem:  # the same fields are named on both faces
            assert [e["pointer"] for e in problem["errors"]] == [
                e["pointer"] for e in error["extensions"]["errors"]
            ]
        if "missingPublicIds" in problem:
            assert problem["missingPublicIds"] == error["extensions"]["missingPublicIds"]
    # the same change to the stored state, face after face
    assert {t: after_rest[t] - before[t] for t in before} == {
        t: after_graphql[t] - after_rest[t] for t in before
    }
