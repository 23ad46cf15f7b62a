"""Property-based tests: any JSON body gives a 201 or a well-formed problem, never a 5xx."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLE_ID
from tests.test_graphql import EXPRESS
from tests.test_rest import PROBLEM_MEMBERS, ROUTE

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
public_ids = st.one_of(
    st.just(EXAMPLE_ID),
    st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=70),
    st.text(max_size=10),
    json_values,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"candidates": st.lists(st.fixed_dictionaries({"publicId": public_ids}), max_size=4)},
        optional={"additionalNotes": st.one_of(st.text(max_size=50), json_values)},
    ),
)
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(body=bodies)
def test_rest_never_fails_on_any_json(client, key, candidates, body):
    response = client.post(ROUTE, json=body, headers={"X-API-Key": key})
    if response.status_code == 201:
        assert set(response.json()) == {"message", "jobMatchId"}
        return
    assert response.status_code in (400, 404), response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem.keys() >= PROBLEM_MEMBERS and problem["status"] == response.status_code


@SETTINGS
@given(raw=st.binary(max_size=200))
def test_rest_never_fails_on_any_bytes(client, key, raw):
    response = client.post(
        ROUTE, content=raw, headers={"X-API-Key": key, "Content-Type": "application/json"}
    )
    assert response.status_code in (201, 400, 404), response.text
    if response.status_code != 201:
        assert response.headers["content-type"] == "application/problem+json"


@SETTINGS
@given(variables=json_values)
def test_graphql_never_fails_on_any_variables(client, key, candidates, variables):
    response = client.post(
        "/graphql",
        json={"query": EXPRESS, "variables": {"input": variables}},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    for error in body.get("errors", []):
        assert error["extensions"]["status"] in (400, 404), error
        assert error["extensions"]["code"] in ("BAD_USER_INPUT", "NOT_FOUND")


@SETTINGS
@given(document=st.text(max_size=200))
def test_graphql_never_fails_on_any_document(client, key, document):
    response = client.post("/graphql", json={"query": document}, headers={"X-API-Key": key})
    assert response.status_code in (200, 400), response.text
    for error in response.json().get("errors", []):
        assert error["extensions"]["status"] < 500, error
