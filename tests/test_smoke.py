from tests.conftest import EXAMPLE_ID


def test_contract_example(client, key, candidates):
    response = client.post(
        "/v1/candidates/job-match",
        json={"candidates": [{"publicId": EXAMPLE_ID}], "additionalNotes": "hi"},
        headers={"X-API-Key": key},
    )
    print(response.status_code, response.headers, response.text)
    assert response.status_code == 201
    gql = client.post(
        "/graphql",
        json={"query": "{ viewer { name scopes } jobMatches(first: 5) { edges { cursor node { id candidates { publicId } } } pageInfo { hasNextPage endCursor } } }"},
        headers={"X-API-Key": key},
    )
    print(gql.text)
    assert gql.status_code == 200
