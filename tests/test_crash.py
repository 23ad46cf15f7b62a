"""Crash test: SIGKILL a real ``gateway serve`` in the middle of a load, restart it on the same
database, and check that nothing acknowledged was lost and nothing was recorded twice.

A few concurrent clients (127.0.0.1 only) send ``POST /v1/candidates/job-match``, each request
with its own Idempotency-Key, for a few seconds; then the server is killed with SIGKILL while
requests are in flight. After a restart, every request that never got an answer is retried with
its key and body, and the database is audited:

- every 201 the clients saw has its job match (no losses);
- every unanswered request, retried, gets a 201 and exactly one record;
- no link row without its job match, no job match without links, links = the request's list;
- job matches = distinct keys that succeeded = idempotency records (no duplicates).

Runs on SQLite always and on PostgreSQL when GATEWAY_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from gateway.database import create_sync_engine
from tests.conftest import POSTGRES_URL
from tests.servers import GatewayServer, gateway_env, launch_and_seed, run_cli

pytestmark = pytest.mark.slow

PATH = "/v1/candidates/job-match"
CLIENTS = 6
KILL_AFTER_SECONDS = (4.0, 7.0)  # the kill comes at a random moment in this window
LOAD_CAP_SECONDS = 20.0  # hard bound on the load, whatever happens
MAX_REQUESTS = 20_000
REPLAY_SAMPLE = 40


@dataclass
class Attempt:
    key: str
    candidates: list[str]
    notes: str
    status: int | None = None
    job_match_id: str | None = None
    error: str | None = None
    retry_status: int | None = None
    retry_job_match_id: str | None = None
    retry_replayed: bool | None = None

    @property
    def body(self) -> dict[str, object]:
        return {
            "candidates": [{"publicId": c} for c in self.candidates],
            "additionalNotes": self.notes,
        }


@dataclass
class Load:
    attempts: list[Attempt] = field(default_factory=list)
    killed_at: float | None = None
    duration: float = 0.0


async def _post(client: httpx.AsyncClient, api_key: str, attempt: Attempt) -> httpx.Response:
    return await client.post(
        PATH, json=attempt.body, headers={"X-API-Key": api_key, "Idempotency-Key": attempt.key}
    )


async def _load_and_kill(server: GatewayServer, api_key: str, candidates: list[str]) -> Load:
    load = Load()
    stop = asyncio.Event()
    rng = random.Random()
    started = time.monotonic()

    async def client_loop(n: int, client: httpx.AsyncClient) -> None:
        i = 0
        while not stop.is_set() and len(load.attempts) < MAX_REQUESTS:
            if time.monotonic() - started > LOAD_CAP_SECONDS:
                return
            i += 1
            attempt = Attempt(
                key=f"crash-{n}-{i}-{uuid.uuid4().hex[:10]}",
                candidates=rng.sample(candidates, rng.randint(1, min(3, len(candidates)))),
                notes=f"client {n} request {i}",
            )
            load.attempts.append(attempt)
            try:
                response = await _post(client, api_key, attempt)
            except httpx.HTTPError as exc:
                attempt.error = type(exc).__name__
                return  # the server is gone: this client's in-flight request is unanswered
            attempt.status = response.status_code
            if response.status_code == 201:
                attempt.job_match_id = response.json()["jobMatchId"]

    async def killer() -> None:
        await asyncio.sleep(rng.uniform(*KILL_AFTER_SECONDS))
        server.signal(signal.SIGKILL)  # , right now, with requests in flight
        load.killed_at = time.monotonic() - started
        stop.set()

    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=server.url, timeout=15.0, limits=limits) as client:
        kill_task = asyncio.create_task(killer())
        await asyncio.wait_for(
            asyncio.gather(*(client_loop(n, client) for n in range(CLIENTS))),
            LOAD_CAP_SECONDS + 15,
        )
        await kill_task
    load.duration = time.monotonic() - started
    return load


async def _retry(server: GatewayServer, api_key: str, attempts: list[Attempt]) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=15.0) as client:
        semaphore = asyncio.Semaphore(CLIENTS)

        async def one(attempt: Attempt) -> None:
            async with semaphore:
                response = await _post(client, api_key, attempt)
            attempt.retry_status = response.status_code
            if response.status_code == 201:
                attempt.retry_job_match_id = response.json()["jobMatchId"]
                attempt.retry_replayed = response.headers.get("idempotent-replayed") == "true"

        await asyncio.gather(*(one(a) for a in attempts))


def _audit(url: str) -> dict[str, object]:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as c:
            scalar = lambda sql: int(c.exec_driver_sql(sql).scalar_one())  # noqa: E731
            by_key = {
                key: (public_id, job_match_id)
                for key, public_id, job_match_id in c.exec_driver_sql(
                    "SELECT r.key, j.public_id, j.id FROM idempotency_record r "
                    "JOIN job_match j ON j.id = r.job_match_id"
                )
            }
            links: dict[int, list[str]] = {}
            for job_match_id, public_id in c.exec_driver_sql(
                "SELECT l.job_match_id, c.public_id FROM job_match_candidate l "
                "JOIN candidate c ON c.id = l.candidate_id ORDER BY l.job_match_id, l.position"
            ):
                links.setdefault(job_match_id, []).append(public_id)
            return {
                "job_matches": scalar("SELECT count(*) FROM job_match"),
                "idempotency_records": scalar("SELECT count(*) FROM idempotency_record"),
                "links": scalar("SELECT count(*) FROM job_match_candidate"),
                "orphan_links": scalar(
                    "SELECT count(*) FROM job_match_candidate l "
                    "LEFT JOIN job_match j ON j.id = l.job_match_id WHERE j.id IS NULL"
                ),
                "job_matches_without_links": scalar(
                    "SELECT count(*) FROM job_match j WHERE NOT EXISTS "
                    "(SELECT 1 FROM job_match_candidate l WHERE l.job_match_id = j.id)"
                ),
                "job_matches_without_record": scalar(
                    "SELECT count(*) FROM job_match j WHERE NOT EXISTS "
                    "(SELECT 1 FROM idempotency_record r WHERE r.job_match_id = j.id)"
                ),
                "public_ids": {
                    row[0] for row in c.exec_driver_sql("SELECT public_id FROM job_match")
                },
                "by_key": by_key,
                "links_by_job_match": links,
            }
    finally:
        engine.dispose()


def _crash_once(url: str, tmp_path: Path, backend: str) -> None:
    env = gateway_env(url, rate_limit_per_hour=0, key_cache_seconds=60)
    run_cli(["migrate"], env, tmp_path)
    server = GatewayServer(env, tmp_path, name=f"{backend}-before-crash")
    seeded = launch_and_seed([server], env, client=f"Crash {backend}", candidates=8, cwd=tmp_path)
    try:
        load = asyncio.run(_load_and_kill(server, seeded.key, seeded.candidate_ids))
        exit_code = server.wait(10)
    finally:
        server.stop(kill=True)
    assert exit_code == -9, f"the server was not SIGKILLed ({exit_code})\n{server.logs()}"

    attempts = load.attempts
    acknowledged = [a for a in attempts if a.status == 201]
    unanswered = [a for a in attempts if a.status is None]
    refused = [a for a in attempts if a.status is not None and a.status != 201]
    assert not refused, [(a.key, a.status) for a in refused[:5]]
    assert acknowledged, "no request succeeded before the kill"
    assert unanswered, "the kill found no request in flight: not a crash mid-load"

    restarted = GatewayServer(env, tmp_path, name=f"{backend}-after-crash").start()
    try:
        asyncio.run(_retry(restarted, seeded.key, unanswered))
        # A sample of the acknowledged ones too: their records replay the very same result.
        sample = random.sample(acknowledged, min(REPLAY_SAMPLE, len(acknowledged)))
        asyncio.run(_retry(restarted, seeded.key, sample))
    finally:
        restarted.stop()

    audit = _audit(url)
    by_key: dict[str, tuple[str, int]] = audit["by_key"]  # type: ignore[assignment]
    public_ids: set[str] = audit["public_ids"]  # type: ignore[assignment]
    links: dict[int, list[str]] = audit["links_by_job_match"]  # type: ignore[assignment]

    retried_ok = [a for a in unanswered if a.retry_status == 201]
    committed_before_kill = [a for a in retried_ok if a.retry_replayed]
    succeeded_keys = {a.key for a in acknowledged} | {a.key for a in retried_ok}
    losses = [a for a in acknowledged if a.job_match_id not in public_ids]
    wrong_record = [
        a
        for a in acknowledged + retried_ok
        if by_key.get(a.key, ("?",))[0] != (a.job_match_id or a.retry_job_match_id)
    ]
    wrong_links = [
        a for a in acknowledged + retried_ok if links.get(by_key[a.key][1]) != a.candidates
    ]
    replays_differ = [
        a
        for a in sample
        if a.retry_status != 201 or not a.retry_replayed or a.retry_job_match_id != a.job_match_id
    ]
    duplicates = int(audit["job_matches"]) - len(succeeded_keys)  # type: ignore[arg-type]

    print(
        f"\n[crash/{backend}] load {load.duration:.1f}s with {CLIENTS} clients, SIGKILL at "
        f"{load.killed_at:.1f}s: requests sent {len(attempts)} (+{len(unanswered)} retries, "
        f"+{len(sample)} replay checks), 201s before the kill {len(acknowledged)}, unanswered "
        f"{len(unanswered)} (retried: {len(retried_ok)} got 201, of which "
        f"{len(committed_before_kill)} replayed a write committed before the kill), "
        f"records: job_match {audit['job_matches']}, idempotency_record "
        f"{audit['idempotency_records']}, links {audit['links']}, distinct keys succeeded "
        f"{len(succeeded_keys)}, duplicates {duplicates}, losses {len(losses)}, orphan links "
        f"{audit['orphan_links']}, job matches without links "
        f"{audit['job_matches_without_links']}"
    )

    assert [a.retry_status for a in unanswered] == [201] * len(unanswered)
    assert not losses, [a.job_match_id for a in losses[:5]]
    assert not wrong_record, [a.key for a in wrong_record[:5]]
    assert not wrong_links, [a.key for a in wrong_links[:5]]
    assert not replays_differ, [(a.key, a.retry_status) for a in replays_differ[:5]]
    assert audit["orphan_links"] == 0
    assert audit["job_matches_without_links"] == 0
    assert audit["job_matches_without_record"] == 0
    assert duplicates == 0
    assert audit["job_matches"] == len(succeeded_keys) == len(attempts)
    assert audit["idempotency_records"] == audit["job_matches"]


def test_crash_sqlite(tmp_path: Path) -> None:
    _crash_once(f"sqlite:///{tmp_path / 'crash.sqlite3'}", tmp_path, "sqlite")


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="GATEWAY_TEST_DATABASE_URL is not set")
def test_crash_postgresql(database_url: str, tmp_path: Path) -> None:
    _crash_once(database_url, tmp_path, "postgresql")
