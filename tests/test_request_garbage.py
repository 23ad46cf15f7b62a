"""Every request's objects are freed by reference counting as it ends, on both faces.

What reaches the cyclic collector instead piles up between its runs, and each run then frees
it all at once while the event loop waits: under load that was the GraphQL p99 (see
docs/performance.md, "Tails"). The sentinel is the request's ``RequestState``, which the
context, the executor and the results all reach: if any of them is caught in a reference
cycle, the state is found among the collector's garbage.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator

import pytest
from graphql.execution import Executor

from gateway.request_state import RequestState
from tests.test_graphql import EXPRESS, PAGE, gql


@pytest.fixture
def cyclic_garbage() -> Iterator[Callable[[], list[object]]]:
    """Collects first, then keeps the collector off until the test asks what it would free."""
    gc.collect()
    gc.disable()

    def unreachable() -> list[object]:
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            return [o for o in gc.garbage if isinstance(o, (RequestState, Executor))]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.collect()  # what was only kept for inspection is freed now

    yield unreachable
    gc.enable()


def _graphql_requests(client, key, candidates) -> None:
    express_input = {"input": {"candidates": [{"publicId": candidates[0]}]}}
    assert "errors" not in gql(client, key, EXPRESS, express_input).json()
    assert "errors" not in gql(client, key, PAGE, {"first": 10}).json()
    unknown = {"input": {"candidates": [{"publicId": "no-such-candidate"}]}}
    assert gql(client, key, EXPRESS, unknown).json()["errors"][0]["extensions"]["status"] == 404
    assert gql(client, "jmk_wrong", EXPRESS, express_input).json()["errors"]
    assert gql(client, key, "{ nope }").json()["errors"]


def _rest_requests(client, key, candidates) -> None:
    url = "/v1/candidates/job-match"
    body = {"candidates": [{"publicId": candidates[1]}]}
    assert client.post(url, json=body, headers={"X-API-Key": key}).status_code == 201
    assert client.post(url, json={"candidates": []}, headers={"X-API-Key": key}).status_code == 400
    assert client.post(url, json=body).status_code == 401


@pytest.mark.parametrize("face", [_graphql_requests, _rest_requests], ids=["graphql", "rest"])
def test_requests_leave_nothing_for_the_cyclic_collector(
    client, key, candidates, cyclic_garbage, face
):
    face(client, key, candidates)  # warm: first calls fill caches, which is not garbage
    cyclic_garbage()
    face(client, key, candidates)
    assert cyclic_garbage() == []


def test_unexpected_errors_leave_nothing_either(
    client, key, candidates, monkeypatch, cyclic_garbage
):
    from gateway import job_matches

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(job_matches.JobMatchService, "_write", explode)
    # pytest's log capture keeps every record, and with it the logged traceback's frames.
    monkeypatch.setattr(logging.getLogger("gateway.graphql"), "propagate", False)
    express_input = {"input": {"candidates": [{"publicId": candidates[0]}]}}
    gql(client, key, EXPRESS, express_input)
    cyclic_garbage()
    body = gql(client, key, EXPRESS, express_input).json()
    assert body["errors"][0]["extensions"]["status"] == 500
    assert cyclic_garbage() == []
