"""The GraphQL face through POST /graphql: mutation, queries, errors, limits, statement counts."""

from __future__ import annotations

import json

import pytest

from gateway.scopes import Scope
from tests.conftest import EXAMPLE_ID, count_rows

EXPRESS = """
mutation Express($input: ExpressInterestInput!) {
  expressInterest(input: $input) {
    message jobMatchId
    jobMatch { id additionalNotes createdAt candidates { publicId } }
  }
}"""
PAGE = """
query Page($first: Int, $after: String) {
  jobMatches(first: $first, after: $after) {
    edges { cursor node { id candidates { publicId } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def inline_mutation(public_id):
    return (
        'mutation { expressInterest(input: {candidates: [{publicId: "ID"}]}) { jobMatchId } }'
    ).replace("ID", public_id)


def gql(client, key, query, variables=None, headers=None, operation_name=None):
    headers = dict(headers or {})
    if key is not None:
        headers["X-API-Key"] = key
    body = {"query": query, "variables": variables or {}}
    if operation_name:
        body["operationName"] = operation_name
    response = client.post("/graphql", json=body, headers=headers)
    assert response.headers["content-type"].startswith("application/json")
    return response


def express(client, key, ids, notes=None, **input_fields):
    payload = {
        "candidates": [{"publicId": i} for i in ids],
        "additionalNotes": notes,
        **input_fields,
    }
    return gql(client, key, EXPRESS, {"input": payload})


def only_error(response):
    body = response.json()
    assert len(body["errors"]) == 1, body
    return body["errors"][0]


def test_express_interest_records_and_returns_job_match(client, key, candidates, engine):
    response = express(client, key, [EXAMPLE_ID, candidates[3]], "Great fit")
    assert response.status_code == 200
    payload = response.json()["data"]["expressInterest"]
    assert payload["message"] == "Your interest has been successfully recorded."
    assert payload["jobMatchId"].startswith("job-match-")
    assert payload["jobMatch"]["id"] == payload["jobMatchId"]
    assert payload["jobMatch"]["additionalNotes"] == "Great fit"
    assert payload["jobMatch"]["candidates"] == [
        {"publicId": EXAMPLE_ID},
        {"publicId": candidates[3]},
    ]
    assert count_rows(engine, "job_match") == 1
    assert count_rows(engine, "job_match_candidate") == 2

    read = gql(
        client,
        key,
        "query($id: ID!) { jobMatch(id: $id) { id createdAt candidates { publicId } } }",
        {"id": payload["jobMatchId"]},
    )
    assert read.json()["data"]["jobMatch"]["candidates"][1]["publicId"] == candidates[3]


def test_input_fields_omitted_null_or_inline(client, key, candidates):
    """The input's optional fields may be left out or null; literals work like variables."""
    omitted = {"input": {"candidates": [{"publicId": candidates[0]}]}}
    null = {"input": {"candidates": [{"publicId": candidates[1]}], "additionalNotes": None}}
    for variables in (omitted, null):
        payload = gql(client, key, EXPRESS, variables).json()["data"]["expressInterest"]
        assert payload["jobMatch"]["additionalNotes"] is None
    ids = f'[{{publicId: "{candidates[2]}"}}, {{publicId: "{candidates[3]}"}}]'
    inline = (
        f'mutation {{ expressInterest(input: {{candidates: {ids}, additionalNotes: "inline", '
        'idempotencyKey: "k-inline"}) { jobMatch { additionalNotes candidates { publicId } } } }'
    )
    for _ in range(2):  # the second is the idempotent replay of the first
        job_match = gql(client, key, inline).json()["data"]["expressInterest"]["jobMatch"]
        assert job_match["additionalNotes"] == "inline"
        assert job_match["candidates"] == [{"publicId": candidates[2]}, {"publicId": candidates[3]}]


def test_viewer_and_candidate_queries(client, keys, candidates):
    key = keys.create("Talent Finders", scopes=(Scope.JOB_MATCH_READ,))
    body = gql(
        client,
        key,
        "query($id: String!) { viewer { name scopes } "
        "known: candidate(publicId: $id) { publicId } "
        'unknown: candidate(publicId: "nobody") { publicId } }',
        {"id": EXAMPLE_ID},
    ).json()
    assert body["data"]["viewer"] == {"name": "Talent Finders", "scopes": ["job-match:read"]}
    assert body["data"]["known"] == {"publicId": EXAMPLE_ID}
    assert body["data"]["unknown"] is None


@pytest.mark.parametrize(
    ("input_fields", "paths"),
    [
        ({"candidates": []}, [["input", "candidates"]]),
        ({"candidates": [{"publicId": "bad id"}]}, [["input", "candidates", 0, "publicId"]]),
        (
            {"candidates": [{"publicId": "a"}, {"publicId": "a"}], "additionalNotes": "x" * 2001},
            [["input", "candidates", 1, "publicId"], ["input", "additionalNotes"]],
        ),
    ],
)
def test_validation_errors_are_gathered_with_paths(client, key, engine, input_fields, paths):
    error = only_error(gql(client, key, EXPRESS, {"input": input_fields}))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["status"] == 400
    assert [e["path"] for e in error["extensions"]["errors"]] == paths
    assert count_rows(engine, "job_match") == 0


def test_type_errors_in_variables_are_bad_user_input(client, key):
    error = only_error(gql(client, key, EXPRESS, {"input": {"candidates": "nope"}}))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "status": 400}


def test_unknown_candidates_are_not_found_with_missing_ids(client, key, candidates, engine):
    error = only_error(express(client, key, [candidates[0], "ghost-1", "ghost-2"]))
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["extensions"]["status"] == 404
    assert error["extensions"]["missingPublicIds"] == ["ghost-1", "ghost-2"]
    assert count_rows(engine, "job_match") == 0


@pytest.mark.parametrize("api_key", [None, "jmk_unknown", "garbage"])
def test_unauthenticated(client, candidates, api_key):
    for response in (
        express(client, api_key, [candidates[0]]),
        gql(client, api_key, "{ viewer { name } }"),
    ):
        error = only_error(response)
        assert error["extensions"] == {"code": "UNAUTHENTICATED", "status": 401}


def test_forbidden_without_the_scope(client, keys, candidates):
    reader = keys.create("R", scopes=(Scope.JOB_MATCH_READ,))
    writer = keys.create("W", scopes=(Scope.JOB_MATCH_WRITE,))
    error = only_error(express(client, reader, [candidates[0]]))
    assert error["extensions"] == {"code": "FORBIDDEN", "status": 403}
    assert error["message"] == "You do not have permission to submit job matches."
    error = only_error(gql(client, writer, "{ jobMatches { edges { cursor } } }"))
    assert error["extensions"] == {"code": "FORBIDDEN", "status": 403}


def test_unexpected_errors_are_masked(client, key, candidates, monkeypatch, caplog):
    from gateway import job_matches

    def explode(*args, **kwargs):
        raise RuntimeError("psycopg: password=hunter2 SELECT * FROM api_key")

    monkeypatch.setattr(job_matches.JobMatchService, "_write", explode)
    response = express(client, key, [candidates[0]])
    error = only_error(response)
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "status": 500}
    assert error["message"] == "An unexpected error occurred. Please try again later."
    assert "hunter2" not in response.text and "SELECT" not in response.text
    assert "hunter2" in caplog.text  # the log has the internals, the response does not


def test_pagination_walks_every_job_match_once_newest_first(client, key, candidates):
    created = [
        express(client, key, [candidates[i]]).json()["data"]["expressInterest"]["jobMatchId"]
        for i in range(7)
    ]
    seen, after = [], None
    while True:
        data = gql(client, key, PAGE, {"first": 3, "after": after}).json()["data"]["jobMatches"]
        seen += [edge["node"]["id"] for edge in data["edges"]]
        assert data["pageInfo"]["endCursor"] == (
            data["edges"][-1]["cursor"] if data["edges"] else None
        )
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
        # a job match created mid-walk must not shift the pages
        if len(seen) == 3:
            express(client, key, [candidates[50]])
    assert seen == list(reversed(created))


def test_first_is_capped_and_validated(client, key, candidates):
    for i in range(3):
        express(client, key, [candidates[i]])
    data = gql(client, key, PAGE, {"first": 1000}).json()["data"]["jobMatches"]
    assert len(data["edges"]) == 3
    error = only_error(gql(client, key, PAGE, {"first": -1}))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    error = only_error(gql(client, key, PAGE, {"first": 2, "after": "garbage!"}))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


def test_tenants_see_only_their_own_job_matches(client, keys, candidates):
    alice, bob = keys.create("Alice"), keys.create("Bob")
    alices = express(client, alice, [candidates[0]]).json()["data"]["expressInterest"]
    express(client, bob, [candidates[1]])
    bob_page = gql(client, bob, PAGE, {"first": 50}).json()["data"]["jobMatches"]["edges"]
    assert alices["jobMatchId"] not in [edge["node"]["id"] for edge in bob_page]
    assert len(bob_page) == 1
    leaked = gql(
        client, bob, "query($id: ID!) { jobMatch(id: $id) { id } }", {"id": alices["jobMatchId"]}
    ).json()
    assert leaked == {"data": {"jobMatch": None}}


@pytest.mark.parametrize("page_size", [1, 50])
def test_a_page_costs_a_constant_number_of_statements(
    client, key, candidates, count_statements, page_size
):
    for i in range(page_size):
        express(client, key, candidates[i : i + 3])
    gql(client, key, "{ viewer { name } }")  # warm the key cache path
    counter = count_statements()
    data = gql(client, key, PAGE, {"first": page_size}).json()["data"]["jobMatches"]
    assert len(data["edges"]) == page_size
    assert all(len(edge["node"]["candidates"]) == 3 for edge in data["edges"])
    # key lookup + one page query + one batched candidates query
    assert counter.count <= 3, counter.statements


def test_express_interest_statement_count_does_not_grow_with_candidates(
    client, key, candidates, count_statements
):
    express(client, key, [candidates[0]])  # warm-up: last_used_at write happens once
    counts = []
    for ids in ([candidates[1]], candidates[2:102]):
        counter = count_statements()
        assert "errors" not in express(client, key, ids).json()
        counts.append(counter.count)
    assert counts[0] == counts[1], counts


def test_depth_alias_and_token_limits(make_client, key):
    client = make_client(graphql_max_depth=3)
    deep = "{ jobMatches { edges { node { candidates { publicId } } } } }"
    error = only_error(gql(client, key, deep))
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "depth" in error["message"]
    assert "errors" not in gql(client, key, "{ jobMatches { edges { cursor } } }").json()
    assert "errors" not in gql(make_client(), key, deep).json()  # the default admits it

    aliased = "query { " + " ".join(f"a{i}: viewer {{ name }}" for i in range(20)) + " }"
    error = only_error(gql(client, key, aliased))
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "alias" in error["message"]

    huge = "query { " + "viewer { name } " * 1500 + "}"
    error = only_error(gql(client, key, huge))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "status": 400}
    assert "tokens" in error["message"]


def test_oversized_graphql_body_is_refused(client, key):
    response = client.post(
        "/graphql",
        content=b'{"query": "' + b" " * 70_000 + b'{x}"}',
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert only_error(response)["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


def test_batching_is_off(client, key):
    response = client.post(
        "/graphql", json=[{"query": "{ viewer { name } }"}] * 2, headers={"X-API-Key": key}
    )
    assert response.status_code == 400
    assert only_error(response)["extensions"]["code"] == "BAD_USER_INPUT"


def test_only_one_operation_runs(client, key):
    document = "query A { viewer { name } } query B { viewer { scopes } }"
    error = only_error(gql(client, key, document))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    body = gql(client, key, document, operation_name="B").json()
    assert body["data"] == {"viewer": {"scopes": ["job-match:read", "job-match:write"]}}


def test_repeated_documents_are_checked_like_new_ones(make_client, key):
    """Documents are parsed and validated once per query text, then found by it: the second
    time round every answer must be the same, errors included, also for documents the
    bounded cache (two entries here) has evicted meanwhile."""
    client = make_client(graphql_max_depth=3, graphql_cache_size=2)
    deep = "{ jobMatches { edges { node { candidates { publicId } } } } }"
    several = "query A { viewer { name } } query B { viewer { scopes } }"
    for _ in range(2):
        assert "depth" in only_error(gql(client, key, deep))["message"]
        assert "operationName" in only_error(gql(client, key, several))["message"]
        named = gql(client, key, several, operation_name="A").json()
        assert named == {"data": {"viewer": {"name": "Acme Recruiting"}}}
        assert "Cannot query field" in only_error(gql(client, key, "{ nope }"))["message"]
        assert "Syntax Error" in only_error(gql(client, key, "{ viewer { "))["message"]


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", None],
)
def test_csrf_form_content_types_are_refused(client, key, content_type, engine, candidates):
    headers = {"X-API-Key": key}
    if content_type:
        headers["Content-Type"] = content_type
    body = json.dumps({"query": inline_mutation(candidates[0])})
    response = client.post("/graphql", content=body.encode(), headers=headers)
    assert response.status_code == 400
    assert only_error(response)["extensions"]["code"] == "BAD_USER_INPUT"
    assert count_rows(engine, "job_match") == 0


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "text/plain; x=application/json"],
)
def test_csrf_check_reads_the_media_type_only(client, key, content_type, engine, candidates):
    body = json.dumps({"query": inline_mutation(candidates[0])})
    headers = {"X-API-Key": key, "Content-Type": content_type}
    response = client.post("/graphql", content=body.encode(), headers=headers)
    recorded = count_rows(engine, "job_match")
    if content_type.startswith("text/plain"):  # a parameter naming JSON does not make it JSON
        assert response.status_code == 400 and recorded == 0
        assert "forgery" in only_error(response)["message"]
    else:
        assert "errors" not in response.json() and recorded == 1


def test_get_queries_need_a_preflight_header_and_mutations_never_run_over_get(
    client, key, candidates, engine
):
    params = {"query": "{ viewer { name } }"}
    refused = client.get("/graphql", params=params, headers={"X-API-Key": key})
    assert refused.status_code == 400
    allowed = client.get(
        "/graphql", params=params, headers={"X-API-Key": key, "Apollo-Require-Preflight": "true"}
    )
    assert allowed.json()["data"]["viewer"]["name"] == "Acme Recruiting"
    mutation = {"query": inline_mutation(candidates[0])}
    response = client.get(
        "/graphql", params=mutation, headers={"X-API-Key": key, "X-Requested-With": "fetch"}
    )
    assert response.status_code in (400, 405)
    assert only_error(response)["extensions"]["status"] in (400, 405)
    assert count_rows(engine, "job_match") == 0


def test_introspection_and_suggestions_depend_on_environment(make_client, key):
    dev = make_client()
    prod = make_client(env="production")
    explicit = make_client(env="production", graphql_introspection=True)
    query = "{ __schema { queryType { name } } }"
    assert gql(dev, key, query).json()["data"]["__schema"]["queryType"]["name"] == "Query"
    error = gql(prod, key, query).json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "introspection" in error["message"]
    assert "errors" not in gql(explicit, key, query).json()
    assert "Did you mean" in only_error(gql(dev, key, "{ viewr { name } }"))["message"]
    assert "Did you mean" not in only_error(gql(prod, key, "{ viewr { name } }"))["message"]


def test_graphiql_is_served_in_development_only(make_client):
    dev, prod = make_client(), make_client(env="production")
    page = dev.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    assert prod.get("/graphql", headers={"Accept": "text/html"}).status_code == 404
