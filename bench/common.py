"""Shared machinery of the benchmarks: seeding through the gateway's CLI, pinned servers,
wrk runs and the after-run integrity checks. Loopback only, every run bounded in time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LUA = BENCH / "wrk" / "scenario.lua"
PYTHON = sys.executable
HOST = "127.0.0.1"  # loopback only, always
SERVER_CORE = "0"
WRK_CORE = "1"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

# Production features stay on; only the rate limit is raised above the offered load.
GATEWAY_ENV = {
    "GATEWAY_ENV": "production",
    "GATEWAY_RATE_LIMIT_PER_HOUR": "100000000",
    "GATEWAY_RATE_LIMIT_BURST": "10000000",
    "GATEWAY_LOG_LEVEL": "INFO",
}


def candidate_id(n: int) -> str:
    """The n-th seeded candidate (1-based); the wrk script builds the same strings."""
    return f"cand-{n:07d}"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _env(database_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(GATEWAY_ENV)
    env["GATEWAY_DATABASE_URL"] = database_url
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def gateway_cli(database_url: str, *args: str, timeout: float = 600) -> str:
    """Run ``gateway ARGS`` (as ``python -m gateway``: works without the console script)."""
    done = subprocess.run(
        [PYTHON, "-m", "gateway", *args],
        env=_env(database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"gateway {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done.stdout


def write_candidates_csv(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("publicId\n")
        for start in range(1, count + 1, 100_000):
            stop = min(count, start + 99_999)
            handle.write("".join(candidate_id(n) + "\n" for n in range(start, stop + 1)))


@dataclass
class Seeded:
    database_url: str
    key: str
    client_id: int
    candidates: int


def seed(database_url: str, workdir: Path, candidates: int) -> Seeded:
    """migrate, import ``candidates`` candidates from a CSV, create one key: all via the CLI."""
    gateway_cli(database_url, "migrate")
    csv_path = workdir / f"candidates-{candidates}.csv"
    write_candidates_csv(csv_path, candidates)
    out = gateway_cli(database_url, "candidates", "import", str(csv_path), timeout=1800)
    log(f"import: {out.strip()}")
    created = json.loads(gateway_cli(database_url, "keys", "create", "--client", "bench", "--json"))
    key_id = int(created["id"])
    client_id = query_one(database_url, f"SELECT client_id FROM api_key WHERE id = {key_id}")
    return Seeded(database_url, created["key"], int(client_id), candidates)


def reset_postgres(url: str = PG_URL) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


# --- database checks -------------------------------------------------------------------------


def _connect(database_url: str):
    if database_url.startswith("sqlite:///"):
        return sqlite3.connect(database_url.removeprefix("sqlite:///"))
    import psycopg

    return psycopg.connect(database_url, autocommit=True)


def query_one(database_url: str, sql: str) -> object:
    connection = _connect(database_url)
    try:
        return connection.execute(sql).fetchone()[0]
    finally:
        connection.close()


@dataclass
class Counts:
    job_matches: int
    distinct_public_ids: int
    links: int


def counts(database_url: str) -> Counts:
    connection = _connect(database_url)
    try:
        total, distinct = connection.execute(
            "SELECT count(*), count(DISTINCT public_id) FROM job_match"
        ).fetchone()
        links = connection.execute("SELECT count(*) FROM job_match_candidate").fetchone()[0]
        return Counts(total, distinct, links)
    finally:
        connection.close()


def missing_ids(database_url: str, ids: list[str]) -> int:
    """How many of the ids the load generator was given back are not in job_match."""
    if not ids:
        return 0
    connection = _connect(database_url)
    try:
        found = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            if database_url.startswith("sqlite"):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT count(*) FROM job_match WHERE public_id IN ({marks})"
                found += connection.execute(sql, chunk).fetchone()[0]
            else:
                sql = "SELECT count(*) FROM job_match WHERE public_id = ANY(%s)"
                found += connection.execute(sql, (chunk,)).fetchone()[0]
        return len(ids) - found
    finally:
        connection.close()


# --- servers ---------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def _wait_healthy(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited early; see {server.log_path}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not become healthy; see {server.log_path}")


def start_server(name: str, command: list[str], env: dict[str, str], log_path: Path) -> Server:
    port = free_port()
    command = [c.replace("{port}", str(port)) for c in command]
    handle = log_path.open("wb")
    process = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, *command],
        env=env,
        cwd=ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(name, port, process, log_path)
    try:
        _wait_healthy(server)
    except BaseException:
        stop_server(server)
        raise
    return server


def start_gateway(database_url: str, log_path: Path, extra_env: dict | None = None) -> Server:
    command = [PYTHON, "-m", "gateway", "serve", "--host", HOST, "--port", "{port}"]
    return start_server("gateway", command, _env(database_url, extra_env), log_path)


def start_baseline(database_path: Path, log_path: Path, loop: str = "uvloop") -> Server:
    """The bare app under uvicorn. ``loop``: uvloop (uvicorn's default when installed, the
    faster for this app) or asyncio (what ``gateway serve`` runs)."""
    env = _env(sqlite_url(database_path), {"BENCH_DB": str(database_path)})
    command = [
        PYTHON, "-m", "uvicorn", "bench.baseline_app:app", "--host", HOST, "--port", "{port}",
        "--workers", "1", "--log-level", "warning", "--no-access-log", "--loop", loop,
    ]  # fmt: skip
    return start_server(f"baseline ({loop})", command, env, log_path)


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


@contextmanager
def running(server_factory, *args, **kwargs) -> Iterator[Server]:
    server = server_factory(*args, **kwargs)
    try:
        yield server
    finally:
        stop_server(server)


# --- wrk -------------------------------------------------------------------------------------


@dataclass
class WrkRun:
    mode: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    sent: int
    ok: int
    statuses: dict[str, int]
    errors: dict[str, int]
    bad_body: int
    ids: list[str] = field(default_factory=list, repr=False)
    check: dict[str, object] | None = None

    def public(self) -> dict[str, object]:
        data = {k: v for k, v in self.__dict__.items() if k != "ids"}
        return data


def wrk(url: str, mode: str, key: str, candidates: int, connections: int, seconds: float,
        workdir: Path) -> WrkRun:  # fmt: skip
    """One bounded wrk run, pinned to its own core."""
    ids_file = workdir / "wrk-ids.txt"
    result_file = workdir / "wrk-result.json"
    for path in (ids_file, result_file):
        path.unlink(missing_ok=True)
    threads = 1 if connections < 16 else 2
    command = [
        "taskset", "-c", WRK_CORE, "wrk", f"-t{threads}", f"-c{connections}",
        f"-d{max(1, round(seconds))}s", "--timeout", "5s", "--latency", "-s", str(LUA),
        url, "--", mode, key, str(candidates), str(ids_file), str(result_file),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0 or not result_file.exists():
        raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
    data = json.loads(result_file.read_text())
    lat = data["latency_us"]
    duration = data["duration_us"] / 1e6
    ids = ids_file.read_text().split() if ids_file.exists() else []
    return WrkRun(
        mode=mode,
        connections=connections,
        duration_s=round(duration, 3),
        requests=data["requests"],
        rps=round(data["requests"] / duration, 1),
        p50_ms=lat["p50"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000,
        sent=data["sent"],
        ok=data["ok"],
        statuses=data["statuses"],
        errors=data["errors"],
        bad_body=data["bad_body"],
        ids=ids,
    )


def settled_counts(database_url: str, timeout: float = 10.0) -> Counts:
    """Counts once the server has finished what was in flight when wrk stopped (wrk closes
    its connections; the requests already read still commit): two equal reads 0.3 s apart."""
    deadline = time.monotonic() + timeout
    previous = counts(database_url)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        current = counts(database_url)
        if current == previous:
            return current
        previous = current
    return previous


def checked_write_run(database_url: str, *wrk_args, **wrk_kwargs) -> WrkRun:
    """A write run followed by the integrity check: every success the client saw has its
    row, no row is duplicated, no more rows appeared than requests were sent."""
    before = settled_counts(database_url)
    run = wrk(*wrk_args, **wrk_kwargs)
    after = settled_counts(database_url)
    delta = after.job_matches - before.job_matches
    # Requests still in flight when wrk stops may commit without wrk reading the response.
    abandoned = max(0, run.sent - run.requests)
    missing = missing_ids(database_url, run.ids)
    problems = []
    if missing:
        problems.append(f"{missing} acknowledged job matches have no row")
    if after.job_matches != after.distinct_public_ids:
        problems.append("duplicate job_match.public_id values")
    if len(set(run.ids)) != len(run.ids):
        problems.append("the same jobMatchId was returned twice")
    if not (run.ok <= delta <= run.ok + abandoned):
        problems.append(f"{delta} new rows for {run.ok} successes ({abandoned} in flight at stop)")
    if after.links - before.links != 3 * delta:
        problems.append(f"{after.links - before.links} new links for {delta} job matches")
    non_success = {s: n for s, n in run.statuses.items() if s not in ("200", "201")}
    if non_success or run.bad_body:
        problems.append(f"non-success responses: {non_success}, bad bodies: {run.bad_body}")
    run.check = {
        "ok": not problems,
        "successes": run.ok,
        "new_rows": delta,
        "in_flight_at_stop": abandoned,
        "missing_rows": missing,
        "total_rows": after.job_matches,
        "distinct_public_ids": after.distinct_public_ids,
        "problems": problems,
    }
    return run


def checked_read_run(*wrk_args, **wrk_kwargs) -> WrkRun:
    run = wrk(*wrk_args, **wrk_kwargs)
    non_success = {s: n for s, n in run.statuses.items() if s != "200"}
    problems = []
    if non_success or run.bad_body:
        problems.append(f"non-success responses: {non_success}, bad bodies: {run.bad_body}")
    run.check = {"ok": not problems, "successes": run.ok, "problems": problems}
    return run


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else float("nan")


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
