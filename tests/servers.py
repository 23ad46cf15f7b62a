"""Real ``gateway`` processes for end-to-end tests, and a TCP proxy that can play "database down".

- :func:`gateway_env` builds the environment of a gateway process (settings only from what the
  test passes, never from the developer's shell).
- :func:`run_cli` / :func:`seed` drive the real CLI (``gateway migrate``, ``keys create``,
  ``candidates add``).
- :class:`GatewayServer` spawns ``gateway serve`` on a free loopback port, waits for
  ``GET /healthz``, captures stdout/stderr to files, and stops it with SIGTERM or SIGKILL. It is
  a context manager and always cleans up, including the worker processes of ``--workers N``
  (it runs in its own process group).
- :class:`TcpProxy` forwards 127.0.0.1:<free port> to a target (PostgreSQL) and can be closed
  (listener gone and every live connection cut) and reopened on the same port.

Everything listens on and connects to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).parent / "gateway"
# The console script `make setup` installs; without it (package not installed), the same entry
# point through `python -m gateway` with the repository on the path.
GATEWAY_COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gateway"]
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_accepts(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def gateway_env(database_url: str, **settings: object) -> dict[str, str]:
    """Environment for a gateway process: the caller's environment without any ``GATEWAY_*``
    variable, then test-friendly defaults, then ``settings`` (``rate_limit_burst=10`` becomes
    ``GATEWAY_RATE_LIMIT_BURST=10``; ``None`` removes a setting)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p
            ),
            "GATEWAY_DATABASE_URL": database_url,
            "GATEWAY_LOG_FORMAT": "json",
            "GATEWAY_LOG_LEVEL": "INFO",
            "GATEWAY_GRAPHIQL_ASSETS": "cdn",
            "GATEWAY_RATE_LIMIT_PER_HOUR": "0",
        }
    )
    for name, value in settings.items():
        var = "GATEWAY_" + name.upper()
        if value is None:
            env.pop(var, None)
        elif isinstance(value, bool):
            env[var] = "true" if value else "false"
        else:
            env[var] = str(value)
    return env


def run_cli(
    args: list[str], env: Mapping[str, str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*GATEWAY_COMMAND, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"gateway {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


@dataclass(frozen=True)
class Seeded:
    key: str
    key_id: int
    client: str
    candidate_ids: list[str]


def seed(
    env: Mapping[str, str],
    client: str = "Crash Test Recruiting",
    candidates: int = 5,
    cwd: Path | None = None,
    migrate: bool = True,
) -> Seeded:
    """``gateway migrate``, then ``gateway keys create --json`` and ``gateway candidates add``
    (those two side by side: each CLI start costs seconds of imports)."""
    if migrate:
        run_cli(["migrate"], env, cwd)
    ids = [f"cand-{i:03d}-{os.urandom(3).hex()}" for i in range(candidates)]
    commands = [["keys", "create", "--client", client, "--json"]]
    if ids:
        commands.append(["candidates", "add", *ids])
    procs = [
        subprocess.Popen(
            [*GATEWAY_COMMAND, *args],
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    outputs = []
    for args, proc in zip(commands, procs, strict=True):
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise AssertionError(
                f"gateway {' '.join(args[:3])} exited {proc.returncode}\n"
                f"stdout:\n{stdout}\nstderr:\n{stderr}"
            )
        outputs.append(stdout)
    created = json.loads(outputs[0].strip().splitlines()[-1])
    return Seeded(created["key"], int(created["id"]), created["client"], ids)


class GatewayServer:
    """One ``gateway serve`` process (and its workers) on a free 127.0.0.1 port."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_dir: Path,
        name: str = "gateway",
        workers: int = 1,
        port: int | None = None,
        graceful_timeout: int = 30,
    ) -> None:
        self.env = dict(env)
        self.log_dir = Path(log_dir)
        self.name = name
        self.workers = workers
        self.port = port or free_port()
        self.graceful_timeout = graceful_timeout
        self.stdout_path = self.log_dir / f"{name}.stdout.log"
        self.stderr_path = self.log_dir / f"{name}.stderr.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._files: list[Any] = []

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = STARTUP_TIMEOUT) -> GatewayServer:
        """Launch and wait until ``GET /healthz`` answers 200."""
        self.launch()
        try:
            self.wait_healthy(timeout)
        except BaseException:
            self.stop(kill=True)
            raise
        return self

    def launch(self) -> GatewayServer:
        """Spawn the process without waiting (start several, then ``wait_healthy`` each)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stdout = open(self.stdout_path, "ab")  # noqa: SIM115 - closed in stop()
        stderr = open(self.stderr_path, "ab")  # noqa: SIM115
        self._files = [stdout, stderr]
        command = [
            *GATEWAY_COMMAND,
            "serve",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--graceful-timeout",
            str(self.graceful_timeout),
        ]
        self.process = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.log_dir,
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: cleanup reaches --workers children
        )
        return self

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last_error: object = None
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.process.returncode} before it was "
                        f"healthy\n{self.logs()}"
                    )
                try:
                    response = client.get(f"{self.url}/healthz")
                    # With --workers N, one worker answering is not enough: wait for all N.
                    if response.status_code == 200 and self.workers_started() >= self.workers:
                        return
                    last_error = response.status_code
                except httpx.HTTPError as exc:
                    last_error = exc
                time.sleep(0.1)
        raise TimeoutError(f"{self.name} not healthy in {timeout}s ({last_error})\n{self.logs()}")

    def workers_started(self) -> int:
        return sum(
            1
            for e in self.log_entries()
            if e.get("logger") == "uvicorn.error"
            and e.get("message") == "Application startup complete."
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def terminate(self, timeout: float = 40.0) -> int:
        """SIGTERM and wait for the exit status (SIGKILL the group if it does not come)."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> int:
        """SIGKILL the server process (only it: a crash, not a cleanup), and reap it."""
        self.signal(signal.SIGKILL)
        return self.wait(10)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_group()
            return self.process.wait(10)

    def _kill_group(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the group this object created

    def stop(self, kill: bool = False) -> int | None:
        """Always leaves nothing behind: the server, its workers and the log files closed."""
        code: int | None = None
        if self.process is not None:
            if self.process.poll() is None:
                code = self.kill() if kill else self.terminate()
            else:
                code = self.process.returncode
            # Workers of a SIGKILLed supervisor would outlive it: reap the whole group.
            self._kill_group()
        for handle in self._files:
            with contextlib.suppress(Exception):
                handle.close()
        self._files = []
        return code

    def __enter__(self) -> GatewayServer:
        if self.process is None:
            return self.start()
        self.wait_healthy()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- logs ---------------------------------------------------------------------------

    def stdout_text(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def log_entries(self) -> list[dict[str, Any]]:
        """Every JSON line the process (and its workers) printed on stdout."""
        entries = []
        for line in self.stdout_text().splitlines():
            line = line.strip()
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    entries.append(json.loads(line))
        return entries

    def access_entries(self) -> list[dict[str, Any]]:
        return [e for e in self.log_entries() if e.get("logger") == "gateway.access"]

    def logs(self, tail: int = 4000) -> str:
        return (
            f"--- {self.name} stdout ---\n{self.stdout_text()[-tail:]}\n"
            f"--- {self.name} stderr ---\n{self.stderr_text()[-tail:]}"
        )


def launch_and_seed(
    servers: list[GatewayServer], env: Mapping[str, str], **seed_options: Any
) -> Seeded:
    """Spawn ``servers`` (the schema must exist already), seed through the CLI meanwhile, then
    wait until every server is healthy. On failure nothing is left running."""
    try:
        for server in servers:
            server.launch()
        seeded = seed(env, migrate=False, **seed_options)
        for server in servers:
            server.wait_healthy()
    except BaseException:
        for server in servers:
            server.stop(kill=True)
        raise
    return seeded


@contextlib.contextmanager
def running(
    env: Mapping[str, str], log_dir: Path, name: str = "gateway", **kwargs: Any
) -> Iterator[GatewayServer]:
    server = GatewayServer(env, log_dir, name=name, **kwargs)
    try:
        yield server.start()
    finally:
        server.stop()


class TcpProxy:
    """127.0.0.1:<port> → target, on its own event loop thread.

    ``close()`` stops listening (new connections are refused) and cuts every live connection in
    both directions; ``open()`` listens again on the same port. Use as a context manager.
    """

    def __init__(self, target_port: int, target_host: str = LOOPBACK) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._thread.start()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    @property
    def is_open(self) -> bool:
        return self._server is not None

    def open(self) -> TcpProxy:
        if self._server is None:
            self._call(self._open())
        return self

    def close(self) -> None:
        if self._server is not None:
            self._call(self._close())

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        self.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _open(self) -> None:
        for _ in range(50):  # the port may linger for a moment after close()
            try:
                self._server = await asyncio.start_server(
                    self._handle, LOOPBACK, self.port, reuse_address=True
                )
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"proxy cannot listen on {LOOPBACK}:{self.port} again")

    async def _close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for transport in list(self._transports):
            transport.abort()  # RST both ways: the gateway and PostgreSQL both see it die
        self._transports.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            writer.transport.abort()
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer.transport, up_writer.transport}
        self._transports |= pair

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    sink.close()

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            self._transports -= pair


# --- Redis (the shared rate-limit store) ------------------------------------------------------

RATE_LIMIT_PREFIX = "gateway:rl:"


def redis_url_or_skip() -> str:
    """GATEWAY_TEST_REDIS_URL, reachable. Unset: skip. Set but unreachable: skip, or fail
    under CI (a missing service there is a failure, never a skip)."""
    import pytest
    import redis

    url = os.environ.get("GATEWAY_TEST_REDIS_URL")
    if not url:
        pytest.skip("GATEWAY_TEST_REDIS_URL is not set")
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {url} unreachable under CI: {exc}")
        pytest.skip(f"Redis unreachable: {exc}")
    finally:
        client.close()
    return url


def flush_rate_limit_keys(url: str, key_ids: list[int] | None = None) -> int:
    """Delete the gateway's rate-limit buckets: those of ``key_ids`` only, or every
    ``gateway:rl:*`` key when None. Never anything else in that Redis database."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        if key_ids is not None:
            names = [f"{RATE_LIMIT_PREFIX}{key_id}" for key_id in key_ids]
        else:
            names = list(client.scan_iter(match=RATE_LIMIT_PREFIX + "*", count=500))
        return int(client.delete(*names)) if names else 0
    finally:
        client.close()


def postgres_port(url: str) -> int:
    from sqlalchemy.engine import make_url

    return int(make_url(url).port or 5432)


def via_proxy(url: str, proxy_port: int) -> str:
    """The same PostgreSQL URL, pointed at 127.0.0.1:<proxy_port>."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(host=LOOPBACK, port=proxy_port).render_as_string(hide_password=False)


def metric_value(text: str, name: str) -> float:
    """One sample's value from a /metrics exposition."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"metric {name} not exposed")
