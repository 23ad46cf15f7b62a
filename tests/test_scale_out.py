"""Scale-out on PostgreSQL + Redis: two real ``gateway serve`` processes on two ports share one
database and one Redis.

- 50 concurrent requests with one Idempotency-Key, spread over both processes: exactly one job
  match; every response is the original 201, a replay of it, or a 409 in-flight problem.
- The rate limit (burst 10, next to no refill) is enforced once across both processes.
- In-flight: while request A holds its key (its INSERT waits on a table lock the test holds),
  B with the same key gets 409 ``idempotency-in-flight``; released, A gets its 201; C replays.

PostgreSQL from GATEWAY_TEST_DATABASE_URL (skipped when unset; under CI an unreachable one
fails), Redis from GATEWAY_TEST_REDIS_URL. Of Redis, only this test's bucket
(``gateway:rl:<key id>``, the id made unique per test) is ever deleted.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from gateway.database import create_sync_engine
from tests.conftest import POSTGRES_URL
from tests.servers import (
    GatewayServer,
    Seeded,
    flush_rate_limit_keys,
    gateway_env,
    launch_and_seed,
    metric_value,
    redis_url_or_skip,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="GATEWAY_TEST_DATABASE_URL is not set"),
]

PATH = "/v1/candidates/job-match"
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = redis_url_or_skip()
    yield url
    flush_rate_limit_keys(url, _bucket_ids)
    _bucket_ids.clear()


_bucket_ids: list[int] = []


def _unique_key_ids(url: str) -> None:
    """Buckets are named after the API key's id (``gateway:rl:<id>``), and ids restart at 1 in
    every fresh schema: start this schema's ids at a random point, so that neither an earlier
    test nor a concurrent session on the same Redis shares this test's bucket."""
    start = random.randint(10_000_000, 2_000_000_000)
    engine = create_sync_engine(url)
    try:
        with engine.begin() as c:
            c.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('api_key', 'id'), {start})")
    finally:
        engine.dispose()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[GatewayServer]]:
    made: list[GatewayServer] = []
    yield made
    for server in made:
        server.stop()


def _count(url: str, table: str) -> int:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as c:
            return int(c.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())
    finally:
        engine.dispose()


def _two_servers(
    url: str, tmp_path: Path, made: list[GatewayServer], **settings: object
) -> tuple[list[GatewayServer], Seeded]:
    env = gateway_env(url, key_cache_seconds=30, **settings)
    _unique_key_ids(url)
    pair = [GatewayServer(env, tmp_path, name=f"replica-{i}") for i in (1, 2)]
    made.extend(pair)
    seeded = launch_and_seed(pair, env, client="Scale-out Recruiting", cwd=tmp_path)
    if settings.get("redis_url"):
        _bucket_ids.append(seeded.key_id)
        flush_rate_limit_keys(str(settings["redis_url"]), [seeded.key_id])  # a fresh bucket
    return pair, seeded


async def _warm_up(servers: list[GatewayServer], seeded: Seeded) -> None:
    """Authenticate once per process (and open a pool connection) without writing a job match
    and without spending rate-limit budget that matters: an unknown record is a 404."""
    async with httpx.AsyncClient(timeout=15.0) as client:
        for server in servers:
            response = await client.get(
                f"{server.url}{PATH}/job-match-unknown", headers={"X-API-Key": seeded.key}
            )
            assert response.status_code in (404, 429), response.text


def _assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= problem.keys()
    assert problem["status"] == status
    assert str(problem["type"]).endswith(f"/problems/{slug}"), problem
    return problem


def test_same_idempotency_key_across_two_processes(
    migrated_url: str, redis_url: str, tmp_path: Path, servers: list[GatewayServer]
) -> None:
    pair, seeded = _two_servers(
        migrated_url,
        tmp_path,
        servers,
        redis_url=redis_url,
        rate_limit_per_hour=100_000,
        rate_limit_burst=1000,
    )
    key = f"scale-out-{uuid.uuid4()}"
    body = {
        "candidates": [{"publicId": c} for c in seeded.candidate_ids[:2]],
        "additionalNotes": "Fifty clicks, one job match.",
    }
    headers = {"X-API-Key": seeded.key, "Idempotency-Key": key}

    async def burst() -> list[tuple[int, httpx.Response]]:
        await _warm_up(pair, seeded)
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:

            async def one(i: int) -> tuple[int, httpx.Response]:
                server = pair[i % 2]
                return i % 2, await client.post(server.url + PATH, json=body, headers=headers)

            return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(50))), 60)

    results = asyncio.run(burst())
    originals, replays, in_flight, other = [], [], [], []
    for replica, response in results:
        if response.status_code == 201:
            replayed = response.headers.get("idempotent-replayed") == "true"
            (replays if replayed else originals).append((replica, response))
        elif response.status_code == 409:
            _assert_problem(response, 409, "idempotency-in-flight")
            in_flight.append((replica, response))
        else:
            other.append((replica, response.status_code, response.text))
    ids = {r.json()["jobMatchId"] for _, r in originals + replays}
    per_replica = Counter(
        (replica, response.status_code, response.headers.get("idempotent-replayed"))
        for replica, response in results
    )
    # After the dust settles, either process replays the one result.
    with httpx.Client(timeout=15.0) as client:
        later = [client.post(s.url + PATH, json=body, headers=headers) for s in pair]
    print(
        f"\n[scale-out/idempotency] 50 concurrent requests, one key, 2 processes: "
        f"original 201s {len(originals)}, replays {len(replays)}, 409 in-flight "
        f"{len(in_flight)}, other {len(other)}; job_match rows {_count(migrated_url, 'job_match')}"
        f", idempotency_record rows {_count(migrated_url, 'idempotency_record')}; "
        f"by (replica, status, replayed): {dict(per_replica)}"
    )
    assert not other, other
    assert len(originals) == 1, [r.headers for _, r in originals]
    assert len(ids) == 1, ids
    assert _count(migrated_url, "job_match") == 1
    assert _count(migrated_url, "idempotency_record") == 1
    assert _count(migrated_url, "job_match_candidate") == 2
    for response in later:
        assert response.status_code == 201
        assert response.headers.get("idempotent-replayed") == "true"
        assert response.json()["jobMatchId"] in ids
    for server in pair:
        assert server.alive(), server.logs()


def test_rate_limit_enforced_once_across_two_processes(
    migrated_url: str, redis_url: str, tmp_path: Path, servers: list[GatewayServer]
) -> None:
    burst, per_hour, requests = 10, 1, 40  # refill: one token an hour
    pair, seeded = _two_servers(
        migrated_url,
        tmp_path,
        servers,
        redis_url=redis_url,
        rate_limit_per_hour=per_hour,
        rate_limit_burst=burst,
    )
    body = {"candidates": [{"publicId": seeded.candidate_ids[0]}]}

    async def flood() -> tuple[list[tuple[int, httpx.Response]], float]:
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=50)) as c:

            async def one(i: int) -> tuple[int, httpx.Response]:
                headers = {"X-API-Key": seeded.key, "Idempotency-Key": f"rl-{i}-{uuid.uuid4()}"}
                return i % 2, await c.post(pair[i % 2].url + PATH, json=body, headers=headers)

            results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(requests))), 60)
        return results, time.monotonic() - started

    results, elapsed = asyncio.run(flood())
    created = [(i, r) for i, r in results if r.status_code == 201]
    limited = [(i, r) for i, r in results if r.status_code == 429]
    allowance = burst + int(elapsed * per_hour / 3600) + 1  # + at most a token of refill
    with httpx.Client(timeout=15.0) as client:
        store_errors = [
            metric_value(
                client.get(s.url + "/metrics").text, "gateway_rate_limit_store_errors_total"
            )
            for s in pair
        ]
    print(
        f"\n[scale-out/rate-limit] burst {burst}, {per_hour}/hour, {requests} requests over 2 "
        f"processes in {elapsed:.2f}s: 201s {len(created)} (replica 1: "
        f"{sum(1 for i, _ in created if i == 0)}, replica 2: "
        f"{sum(1 for i, _ in created if i == 1)}), 429s {len(limited)}, "
        f"job_match rows {_count(migrated_url, 'job_match')}, store errors {store_errors}"
    )
    assert len(created) + len(limited) == requests, Counter(r.status_code for _, r in results)
    assert burst <= len(created) <= allowance
    assert _count(migrated_url, "job_match") == len(created)
    # Had each process kept its own bucket, each could have let `burst` through.
    assert {i for i, _ in limited} == {0, 1}
    assert store_errors == [0.0, 0.0]
    import redis

    with redis.Redis.from_url(redis_url) as shared:
        tokens = float(shared.hget(f"gateway:rl:{seeded.key_id}", "tokens") or -1)
    assert 0 <= tokens < 1, tokens  # the one shared bucket, drained
    for _, response in limited:
        _assert_problem(response, 429, "rate-limited")
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["x-ratelimit-limit"] == str(burst)
        assert response.headers["x-ratelimit-remaining"] == "0"
        assert "ratelimit" in response.headers and "ratelimit-policy" in response.headers
    for _, response in created:
        assert response.headers["x-ratelimit-limit"] == str(burst)


def test_in_flight_key_gets_409_then_replays(
    migrated_url: str, tmp_path: Path, servers: list[GatewayServer]
) -> None:
    import psycopg

    env = gateway_env(migrated_url, key_cache_seconds=30)
    server = GatewayServer(env, tmp_path, name="in-flight")
    servers.append(server)
    seeded = launch_and_seed([server], env, client="In-flight Recruiting", cwd=tmp_path)
    asyncio.run(_warm_up([server], seeded))
    key = f"in-flight-{uuid.uuid4()}"
    body = {"candidates": [{"publicId": seeded.candidate_ids[0]}], "additionalNotes": "A"}
    headers = {"X-API-Key": seeded.key, "Idempotency-Key": key}

    def post() -> httpx.Response:
        return httpx.post(server.url + PATH, json=body, headers=headers, timeout=30.0)

    conninfo = sa.engine.make_url(migrated_url).set(drivername="postgresql")
    dsn = conninfo.render_as_string(hide_password=False)
    with psycopg.connect(dsn) as locker, psycopg.connect(dsn, autocommit=True) as watcher:
        locker.execute("LOCK TABLE job_match IN EXCLUSIVE MODE")
        try:
            with ThreadPoolExecutor(1) as pool:
                first = pool.submit(post)
                deadline = time.monotonic() + 10
                while not first.done() and time.monotonic() < deadline:
                    waiting = watcher.execute(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted "
                        "AND relation = 'job_match'::regclass"
                    ).fetchone()[0]
                    if waiting:
                        break
                    time.sleep(0.05)
                else:
                    raise AssertionError("request A never waited on the job_match lock")
                second = post()  # A holds the key's advisory lock inside its transaction
                locker.rollback()  # release the table
                a = first.result(timeout=30)
        finally:
            if locker.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                locker.rollback()
    third = post()
    print(
        f"\n[in-flight] A {a.status_code}, B (same key, A in flight) {second.status_code}, "
        f"C (after) {third.status_code} replayed={third.headers.get('idempotent-replayed')}"
    )
    _assert_problem(second, 409, "idempotency-in-flight")
    assert a.status_code == 201, a.text
    assert a.headers.get("idempotent-replayed") is None
    assert third.status_code == 201
    assert third.headers.get("idempotent-replayed") == "true"
    assert third.json()["jobMatchId"] == a.json()["jobMatchId"]
    assert _count(migrated_url, "job_match") == 1
