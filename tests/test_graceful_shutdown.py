"""Serving: SIGTERM lets an in-flight request finish; ``--workers 2`` serves from two pids.

The request is made slow without any hook in the product: the test holds the database's write
lock (SQLite: ``BEGIN IMMEDIATE`` on its own connection, so the gateway's write waits on its
5 s busy timeout; PostgreSQL: ``LOCK TABLE job_match IN EXCLUSIVE MODE``, so its INSERT waits).
SIGTERM arrives while the request waits; the lock is released; the request must still get its
201, the job match must exist, and the process must exit on its own.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from gateway import migrate
from gateway.database import SQLITE_BUSY_TIMEOUT_MS, create_sync_engine
from tests.conftest import POSTGRES_URL
from tests.servers import GatewayServer, Seeded, gateway_env, launch_and_seed, port_accepts

pytestmark = pytest.mark.slow

PATH = "/v1/candidates/job-match"
# Exit statuses of a graceful stop: 0, or "terminated by SIGTERM" — uvicorn, once it has shut
# down gracefully, re-raises the SIGTERM it caught (see the report / README on exit codes).
GRACEFUL_EXITS = (0, -signal.SIGTERM)


def _post(server: GatewayServer, seeded: Seeded, key: str | None = None) -> httpx.Response:
    headers = {"X-API-Key": seeded.key}
    if key:
        headers["Idempotency-Key"] = key
    body = {"candidates": [{"publicId": seeded.candidate_ids[0]}], "additionalNotes": "slow"}
    return httpx.post(server.url + PATH, json=body, headers=headers, timeout=30.0)


def _job_match_exists(url: str, public_id: str) -> bool:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as c:
            statement = sa.text("SELECT count(*) FROM job_match WHERE public_id = :p")
            return c.execute(statement, {"p": public_id}).scalar_one() == 1
    finally:
        engine.dispose()


def _migrate(url: str) -> str:
    engine = create_sync_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return url


def _start(url: str, tmp_path: Path, name: str, workers: int = 1) -> tuple[GatewayServer, Seeded]:
    env = gateway_env(url, rate_limit_per_hour=0, key_cache_seconds=60)
    server = GatewayServer(env, tmp_path, name=name, workers=workers, graceful_timeout=30)
    seeded = launch_and_seed([server], env, client=f"Shutdown {name}", cwd=tmp_path)
    return server, seeded


def _in_flight_through_sigterm(
    server: GatewayServer, seeded: Seeded, hold_lock, release_lock, wait_blocked
) -> tuple[httpx.Response, int, dict[str, object]]:
    """Hold the lock, send the request, SIGTERM while it waits, release; return the response,
    the exit status, and what was observed during the shutdown."""
    # Warm up: the first request of a process also writes the key's last_used_at.
    assert _post(server, seeded).status_code == 201
    observed: dict[str, object] = {}
    hold_lock()
    released = False
    try:
        with ThreadPoolExecutor(1) as pool:
            future: Future[httpx.Response] = pool.submit(
                _post, server, seeded, f"slow-{uuid.uuid4()}"
            )
            wait_blocked(future)
            assert not future.done(), "the request was not held up by the lock"
            server.signal(signal.SIGTERM)
            sent = time.monotonic()
            time.sleep(1.0)
            observed["alive_after_sigterm"] = server.alive()
            observed["request_pending_after_sigterm"] = not future.done()
            observed["listener_open_after_sigterm"] = port_accepts(server.port)
            release_lock()
            released = True
            response = future.result(timeout=30)
            code = server.wait(40)
            observed["exit_seconds_after_sigterm"] = round(time.monotonic() - sent, 2)
    finally:
        if not released:
            release_lock()
    return response, code, observed


def test_sigterm_lets_in_flight_request_finish_sqlite(tmp_path: Path) -> None:
    url = _migrate(f"sqlite:///{tmp_path / 'shutdown.sqlite3'}")
    server, seeded = _start(url, tmp_path, "sqlite-sigterm")
    locker = sqlite3.connect(tmp_path / "shutdown.sqlite3", isolation_level=None, timeout=10)
    try:

        def wait_blocked(future: Future[httpx.Response]) -> None:
            # On SQLite the gateway runs statements on its event loop thread, so while its
            # BEGIN IMMEDIATE waits on the busy timeout (5 s) nothing else is answered: a
            # /healthz that times out says the request has reached the lock. Stay well
            # within the busy timeout.
            deadline = time.monotonic() + 3
            with httpx.Client(timeout=0.5) as probe:
                while time.monotonic() < deadline and not future.done():
                    time.sleep(0.1)
                    try:
                        probe.get(server.url + "/healthz")
                    except httpx.TimeoutException:
                        return
            raise AssertionError("the request never waited for the SQLite write lock")

        response, code, observed = _in_flight_through_sigterm(
            server,
            seeded,
            lambda: locker.execute("BEGIN IMMEDIATE"),
            lambda: locker.execute("ROLLBACK"),
            wait_blocked,
        )
    finally:
        locker.close()
        server.stop(kill=True)
    assert SQLITE_BUSY_TIMEOUT_MS >= 4000  # the choreography above fits in the busy timeout
    assert observed["request_pending_after_sigterm"], observed
    assert response.status_code == 201, (response.status_code, response.text, server.logs())
    assert _job_match_exists(url, response.json()["jobMatchId"])
    assert code in GRACEFUL_EXITS, (code, server.logs())
    messages = [e.get("message") for e in server.log_entries()]
    assert "Application shutdown complete." in messages, server.logs()
    print(f"\n[shutdown/sqlite] exit status {code}, observed {observed}")


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="GATEWAY_TEST_DATABASE_URL is not set")
def test_sigterm_lets_in_flight_request_finish_postgresql(
    migrated_url: str, tmp_path: Path
) -> None:
    import psycopg

    server, seeded = _start(migrated_url, tmp_path, "pg-sigterm")
    conninfo = sa.engine.make_url(migrated_url).set(drivername="postgresql")
    locker = psycopg.connect(conninfo.render_as_string(hide_password=False))
    watcher = psycopg.connect(conninfo.render_as_string(hide_password=False), autocommit=True)
    try:

        def hold() -> None:
            locker.execute("LOCK TABLE job_match IN EXCLUSIVE MODE")

        def wait_blocked(future: Future[httpx.Response]) -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not future.done():
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted "
                    "AND relation = 'job_match'::regclass"
                ).fetchone()[0]
                if waiting:
                    return
                time.sleep(0.05)
            raise AssertionError("the request never waited for the job_match lock")

        response, code, observed = _in_flight_through_sigterm(
            server, seeded, hold, locker.rollback, wait_blocked
        )
    finally:
        locker.close()
        watcher.close()
        server.stop(kill=True)
    assert observed["alive_after_sigterm"] and observed["request_pending_after_sigterm"], observed
    # The loop kept running: uvicorn stopped accepting while it waited for the request.
    assert observed["listener_open_after_sigterm"] is False, observed
    assert response.status_code == 201, (response.status_code, response.text, server.logs())
    assert _job_match_exists(migrated_url, response.json()["jobMatchId"])
    assert code in GRACEFUL_EXITS, (code, server.logs())
    print(f"\n[shutdown/postgresql] exit status {code}, observed {observed}")


async def _spread(url: str, seeded: Seeded, pids_seen, max_requests: int, deadline: float):
    """Concurrent requests, each on a fresh connection, until two worker pids answered."""
    sent: dict[str, int] = {}
    body = {"candidates": [{"publicId": seeded.candidate_ids[0]}]}

    async def one(client: httpx.AsyncClient) -> None:
        request_id = str(uuid.uuid4())
        response = await client.post(
            url + PATH,
            json=body,
            headers={"X-API-Key": seeded.key, "X-Request-ID": request_id, "Connection": "close"},
        )
        sent[request_id] = response.status_code

    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=15.0, limits=limits) as client:
        while len(sent) < max_requests and time.monotonic() < deadline:
            await asyncio.gather(*(one(client) for _ in range(8)))
            if len(pids_seen()) >= 2:
                break
    return sent


def test_workers_2_serve_from_two_pids(migrated_url: str, tmp_path: Path) -> None:
    server, seeded = _start(migrated_url, tmp_path, "workers-2", workers=2)
    try:

        def pids_seen() -> set[int]:
            return {e["pid"] for e in server.access_entries() if "pid" in e}

        deadline = time.monotonic() + 20
        sent = asyncio.run(_spread(server.url, seeded, pids_seen, 400, deadline))
        time.sleep(0.3)  # let the last log lines land
        entries = {e["request_id"]: e for e in server.access_entries()}
        pids = {entries[r]["pid"] for r in sent if r in entries}
        parents = {}
        for pid in pids:
            status = Path(f"/proc/{pid}/status").read_text()
            parents[pid] = int(next(li for li in status.splitlines() if li.startswith("PPid:"))[5:])
        code = server.terminate()
    finally:
        server.stop(kill=True)
    print(
        f"\n[workers] {len(sent)} requests answered by worker pids {sorted(pids)} "
        f"(supervisor {server.pid}); exit status after SIGTERM {code}"
    )
    assert set(sent.values()) == {201}, sent
    assert all(r in entries for r in sent), "a request left no access log line"
    assert len(pids) == 2, (pids, server.logs())
    assert server.pid not in pids  # answered by the workers, not the supervisor
    assert set(parents.values()) == {server.pid}, parents
    assert code in GRACEFUL_EXITS, (code, server.logs())
