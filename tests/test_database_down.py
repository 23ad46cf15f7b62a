"""Faults in what the gateway depends on, against real ``gateway serve`` processes.

- PostgreSQL down: the gateway reaches PostgreSQL through a TCP proxy the test can close (no
  new connections, every live one cut) and reopen, so the shared server is never stopped.
  Closed: POST gets a 503 problem+json with Retry-After and nothing internal in the body,
  ``/readyz`` fails, ``/healthz`` still answers. Reopened: service resumes by itself.
- Redis unreachable (a closed port): requests are still served (fail open) and
  ``gateway_rate_limit_store_errors_total`` counts it; with GATEWAY_RATE_LIMIT_FAIL_CLOSED=true
  they get a 503 instead. (No Redis needed: these run on whichever database the suite uses.)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import POSTGRES_URL
from tests.servers import (
    GatewayServer,
    Seeded,
    TcpProxy,
    free_port,
    gateway_env,
    launch_and_seed,
    metric_value,
    port_accepts,
    postgres_port,
    via_proxy,
)

pytestmark = pytest.mark.slow

PATH = "/v1/candidates/job-match"
PROBLEM_JSON = "application/problem+json"
# What must never reach a client: internals of the failure.
LEAKS = ("Traceback", "psycopg", "sqlalchemy", "OperationalError", "SELECT", "INSERT", "5432")


@pytest.fixture
def servers() -> Iterator[list[GatewayServer]]:
    made: list[GatewayServer] = []
    yield made
    for server in made:
        server.stop()


def _post(
    client: httpx.Client, server: GatewayServer, seeded: Seeded, key: str | None = None
) -> httpx.Response:
    headers = {"X-API-Key": seeded.key}
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {"candidates": [{"publicId": seeded.candidate_ids[0]}], "additionalNotes": "fault"}
    return client.post(server.url + PATH, json=body, headers=headers)


def _assert_503(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert int(response.headers["retry-after"]) >= 1
    problem = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= problem.keys()
    assert problem["status"] == 503
    assert str(problem["type"]).endswith("/problems/service-unavailable")
    for leak in LEAKS:
        assert leak not in response.text, (leak, response.text)
    return problem


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="GATEWAY_TEST_DATABASE_URL is not set")
def test_postgresql_down_then_back(
    migrated_url: str, tmp_path: Path, servers: list[GatewayServer]
) -> None:
    with TcpProxy(postgres_port(migrated_url)) as proxy:
        env = gateway_env(via_proxy(migrated_url, proxy.port), key_cache_seconds=30)
        seed_env = gateway_env(migrated_url)  # the CLI seeds directly
        server = GatewayServer(env, tmp_path, name="db-down")
        servers.append(server)
        seeded = launch_and_seed([server], seed_env, client="Fault Recruiting", cwd=tmp_path)

        with httpx.Client(timeout=30.0) as client:
            # Up: pooled connections exist (they will be cut, not just refused).
            assert _post(client, server, seeded).status_code == 201
            assert client.get(server.url + "/readyz").status_code == 200

            proxy.close()
            assert not port_accepts(proxy.port)
            started = time.monotonic()
            down_key = f"down-{uuid.uuid4()}"
            outage = [_post(client, server, seeded, down_key) for _ in range(3)]
            outage.append(_post(client, server, seeded))
            outage_seconds = time.monotonic() - started
            ready = client.get(server.url + "/readyz")
            record = client.get(
                server.url + PATH + "/job-match-anything", headers={"X-API-Key": seeded.key}
            )
            health = client.get(server.url + "/healthz")

            proxy.open()
            recovered_after, recovered = None, None
            deadline = time.monotonic() + 20
            for attempt in range(1, 41):
                response = _post(client, server, seeded, down_key)
                if response.status_code == 201:
                    recovered_after, recovered = attempt, response
                    break
                _assert_503(response)
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            ready_again = client.get(server.url + "/readyz")
            replay = _post(client, server, seeded, down_key)
            fresh = _post(client, server, seeded)
    print(
        f"\n[db-down] 4 POSTs with PostgreSQL unreachable: statuses "
        f"{[r.status_code for r in outage]} in {outage_seconds:.2f}s; /readyz {ready.status_code};"
        f" GET record {record.status_code}; /healthz {health.status_code}; after reopening: "
        f"201 on attempt {recovered_after}, /readyz {ready_again.status_code}"
    )
    for response in outage:
        _assert_503(response)
    _assert_503(record)
    ready_problem = _assert_503(ready)
    assert "database" in str(ready_problem["detail"]).lower()
    assert health.status_code == 200
    assert outage_seconds < 15, "a refused connection should fail fast, not hang"

    assert recovered is not None, server.logs()
    assert recovered_after <= 3, "the gateway should reconnect at once, not after many failures"
    # The failed attempts with that key stored nothing: after recovery it is a new write.
    assert recovered.headers.get("idempotent-replayed") is None
    assert replay.status_code == 201 and replay.headers.get("idempotent-replayed") == "true"
    assert replay.json()["jobMatchId"] == recovered.json()["jobMatchId"]
    assert fresh.status_code == 201
    assert ready_again.status_code == 200, ready_again.text
    assert server.alive(), server.logs()


def test_redis_unreachable_fails_open_or_closed(
    migrated_url: str, tmp_path: Path, servers: list[GatewayServer]
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    common = {
        "redis_url": dead_redis,
        "rate_limit_per_hour": 1000,
        "rate_limit_burst": 50,
        "key_cache_seconds": 30,
    }
    open_env = gateway_env(migrated_url, **common)
    closed_env = gateway_env(migrated_url, rate_limit_fail_closed=True, **common)
    fail_open = GatewayServer(open_env, tmp_path, name="redis-fail-open")
    fail_closed = GatewayServer(closed_env, tmp_path, name="redis-fail-closed")
    servers.extend([fail_open, fail_closed])
    seeded = launch_and_seed([fail_open, fail_closed], open_env, client="Redis Fault", cwd=tmp_path)

    with httpx.Client(timeout=30.0) as client:
        served = [_post(client, fail_open, seeded) for _ in range(3)]
        open_metrics = client.get(fail_open.url + "/metrics").text
        open_ready = client.get(fail_open.url + "/readyz")
        refused = [_post(client, fail_closed, seeded) for _ in range(2)]
        closed_metrics = client.get(fail_closed.url + "/metrics").text
    open_errors = metric_value(open_metrics, "gateway_rate_limit_store_errors_total")
    closed_errors = metric_value(closed_metrics, "gateway_rate_limit_store_errors_total")
    print(
        f"\n[redis-down] fail open: {[r.status_code for r in served]}, store errors "
        f"{open_errors}, /readyz {open_ready.status_code}; fail closed: "
        f"{[r.status_code for r in refused]}, store errors {closed_errors}"
    )
    assert [r.status_code for r in served] == [201, 201, 201]
    assert open_errors >= 3
    assert open_ready.status_code == 503  # ready means Redis reachable when configured
    for response in refused:
        _assert_503(response)
    assert closed_errors >= 2
    logged = [e for e in fail_open.log_entries() if e.get("logger") == "gateway.rate_limit"]
    assert logged and all(e["level"] == "warning" for e in logged), fail_open.logs()
