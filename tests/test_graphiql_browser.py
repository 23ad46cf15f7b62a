"""End to end in a real browser: a real ``gateway serve`` process, seeded with the real CLI,
driven through its self-hosted GraphiQL page in headless Debian Chromium.

The page sets the ``X-API-Key`` header in GraphiQL's headers editor, runs the default
``expressInterest`` mutation, shows the returned ``jobMatchId``; the row is then read back from
the SQLite database. Every request the page makes must stay on the loopback interface.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from schema.graphiql import GraphiQLPage
from tests.browser_support import CHROMIUM_PATH

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).parent / "gateway"
# The console script `make setup` installs; without it, the same entry point via `python -m`.
GATEWAY = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gateway"]
FETCH_SCRIPT = REPO_ROOT / "schema" / "fetch_graphiql_assets.py"
EXIT_UNAVAILABLE = 3
CANDIDATE = "ABcd2EFgHIjkLMNOp3QR-S"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
ON_CI = os.environ.get("CI") == "true"


def _unavailable(reason: str) -> None:
    """Under CI a missing prerequisite is a failure, elsewhere a skip."""
    if ON_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def _assets_usable(directory: Path) -> bool:
    try:
        return GraphiQLPage("self-hosted", directory).self_hosted
    except (RuntimeError, OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def assets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned GraphiQL assets: the checkout's ``var/graphiql`` when it verifies, else
    fetched by the real script (npm pack + integrity check) into a temporary folder."""
    local = REPO_ROOT / "var" / "graphiql"
    if _assets_usable(local):
        return local
    if shutil.which("npm") is None:
        _unavailable("npm is not available to fetch the GraphiQL assets")
    dest = tmp_path_factory.mktemp("graphiql-assets")
    proc = subprocess.run(
        [sys.executable, str(FETCH_SCRIPT), "--dest", str(dest), "--strict"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode == EXIT_UNAVAILABLE:
        _unavailable(f"npm registry unavailable: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    assert _assets_usable(dest), "fetched assets do not verify"
    return dest


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(db_path: Path, assets: Path) -> dict[str, str]:
    """Only the settings this test chooses: nothing GATEWAY_* leaks in from the shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATABASE_URL=f"sqlite:///{db_path}",
        GATEWAY_GRAPHIQL_ASSETS="self-hosted",
        GATEWAY_GRAPHIQL_ASSETS_DIR=str(assets),
        GATEWAY_ENV="development",
        GATEWAY_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    return env


def _cli(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [*GATEWAY, *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"gateway {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


@dataclass
class Served:
    base_url: str
    key: str
    db_path: Path
    log_path: Path


@pytest.fixture
def served(tmp_path: Path, assets_dir: Path) -> Iterator[Served]:
    db_path = tmp_path / "db.sqlite3"
    env = _env(db_path, assets_dir)
    _cli(env, "migrate")
    created = json.loads(_cli(env, "keys", "create", "--client", "Browser", "--json"))
    assert created["client"] == "Browser" and created["key"].startswith("jmk_")
    _cli(env, "candidates", "add", CANDIDATE)

    port = _free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*GATEWAY, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: we stop exactly what we started
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gateway serve exited {proc.returncode}: {log_path.read_text()}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gateway serve did not start: {log_path.read_text()}")
            time.sleep(0.1)
        yield Served(base_url, created["key"], db_path, log_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def _is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname in LOOPBACK_HOSTS


def test_express_interest_from_graphiql_in_chromium(served: Served, tmp_path: Path) -> None:
    if not Path(CHROMIUM_PATH).exists():
        _unavailable(f"{CHROMIUM_PATH} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from tests.browser_support import (
        launch_chromium,
        read_graphiql_result,
        run_graphiql_query,
        set_graphiql_headers,
        wait_for_graphiql,
    )

    # The gateway really serves GraphiQL from its own origin, not from a CDN.
    page_html = httpx.get(f"{served.base_url}/graphql", headers={"Accept": "text/html"}).text
    assert "/graphql/assets/graphiql@" in page_html and "unpkg.com" not in page_html

    external: list[str] = []
    requested: list[str] = []
    console_errors: list[str] = []
    screenshot = tmp_path / "graphiql.png"
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.on(
                "console", lambda m: console_errors.append(m.text) if m.type == "error" else None
            )
            page.on("pageerror", lambda e: console_errors.append(str(e)))
            page.on("request", lambda r: requested.append(r.url))

            def guard(route: Any) -> None:
                if _is_loopback(route.request.url):
                    route.continue_()
                else:
                    external.append(route.request.url)
                    route.abort()

            context.route("**/*", guard)
            page.goto(f"{served.base_url}/graphql")
            wait_for_graphiql(page)
            query_text = page.locator(".graphiql-query-editor .CodeMirror").evaluate(
                "el => el.CodeMirror.getValue()"
            )
            assert "mutation ExpressInterest" in query_text

            set_graphiql_headers(page, json.dumps({"X-API-Key": served.key}))
            run_graphiql_query(page)
            result = json.loads(read_graphiql_result(page))
            page.wait_for_timeout(300)  # let the result pane paint before the screenshot
            page.screenshot(path=str(screenshot), full_page=True)
            stored = page.evaluate("() => JSON.stringify(Object.entries(localStorage))")
        finally:
            browser.close()

    assert "errors" not in result, result
    payload = result["data"]["expressInterest"]
    assert payload["message"] == "Your interest has been successfully recorded."
    job_match_id = payload["jobMatchId"]
    assert job_match_id and payload["jobMatch"]["id"] == job_match_id
    assert payload["jobMatch"]["candidates"] == [{"publicId": CANDIDATE}]

    # The row exists, owned by the Browser client, linked to the candidate.
    with sqlite3.connect(served.db_path) as db:
        rows = db.execute(
            """
            SELECT jm.public_id, jm.additional_notes, ac.name, c.public_id, jmc.position
            FROM job_match jm
            JOIN api_client ac ON ac.id = jm.client_id
            JOIN job_match_candidate jmc ON jmc.job_match_id = jm.id
            JOIN candidate c ON c.id = jmc.candidate_id
            WHERE jm.public_id = ?
            """,
            (job_match_id,),
        ).fetchall()
        assert db.execute("SELECT count(*) FROM job_match").fetchone()[0] == 1
    assert rows == [(job_match_id, "Strong match", "Browser", CANDIDATE, 0)]

    assert external == [], f"the page reached beyond loopback: {external}"
    assert all(_is_loopback(url) for url in requested), requested
    assert any("/graphql/assets/graphiql@" in url for url in requested)
    assert console_errors == []
    assert served.key not in stored  # GraphiQL's history never keeps the API key
    assert screenshot.stat().st_size > 10_000
    # The server logged the request without the key.
    assert served.key not in served.log_path.read_text()
    print(f"screenshot: {screenshot}")
