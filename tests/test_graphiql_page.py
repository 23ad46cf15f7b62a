"""Tests for schema.graphiql.GraphiQLPage against a tiny Starlette app (no gateway code)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import build_schema, introspection_from_schema
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route

from schema.graphiql import PINS_PATH, GraphiQLPage

REPO_ROOT = Path(__file__).resolve().parent.parent
FETCH_SCRIPT = REPO_ROOT / "schema" / "fetch_graphiql_assets.py"
EXIT_UNAVAILABLE = 3
PINS = json.loads(PINS_PATH.read_text(encoding="utf-8"))

STUB_SDL = """
type Query { ping: String }
type Candidate { publicId: String! }
type JobMatch { id: ID! createdAt: String! candidates: [Candidate!]! }
type ExpressInterestPayload { message: String! jobMatchId: ID! jobMatch: JobMatch }
input CandidateInput { publicId: String! }
input ExpressInterestInput { candidates: [CandidateInput!]! additionalNotes: String }
type Mutation { expressInterest(input: ExpressInterestInput!): ExpressInterestPayload! }
"""
STUB_RESULT = {"data": {"expressInterest": {"jobMatchId": "job-match-test"}}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def graphiql_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Assets fetched once per session by the real fetch script (npm pack + integrity check)."""
    dest = tmp_path_factory.mktemp("graphiql-assets")
    on_ci = os.environ.get("CI") == "true"
    if shutil.which("npm") is None:
        if on_ci:
            pytest.fail("npm is not available on CI")
        pytest.skip("npm is not available")
    proc = subprocess.run(
        [sys.executable, str(FETCH_SCRIPT), "--dest", str(dest), "--strict"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode == EXIT_UNAVAILABLE and not on_ci:
        pytest.skip(f"npm registry unavailable: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    return dest


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.urls.append((str(attributes["src"]), attributes))
        if tag == "link" and attributes.get("href"):
            self.urls.append((str(attributes["href"]), attributes))


def asset_urls(page_html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = _TagCollector()
    collector.feed(page_html)
    return collector.urls


class StubGraphQL:
    """Stand-in /graphql endpoint: answers introspection, records what the explorer sent."""

    def __init__(self) -> None:
        self.introspection = {"data": introspection_from_schema(build_schema(STUB_SDL))}
        self.requests: list[dict[str, Any]] = []

    async def endpoint(self, request: Request) -> Response:
        body = await request.json()
        if "__schema" in body.get("query", ""):
            return JSONResponse(self.introspection)
        self.requests.append(
            {
                "api_key": request.headers.get("x-api-key"),
                "content_type": request.headers.get("content-type"),
                "body": body,
            }
        )
        return JSONResponse(STUB_RESULT)


def make_app(page: GraphiQLPage, stub: StubGraphQL | None = None) -> Starlette:
    async def explorer(_: Request) -> HTMLResponse:
        return HTMLResponse(page.html())

    routes: list[Route | Mount] = [Route("/graphql", explorer, methods=["GET"])]
    if stub is not None:
        routes.append(Route("/graphql", stub.endpoint, methods=["POST"]))
    asset_app = page.asset_app()
    if asset_app is not None:
        routes.append(Mount(page.assets_path, app=asset_app))
    return Starlette(routes=routes)


def client_for(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


# --------------------------------------------------------------------------- self-hosted


@pytest.mark.anyio
async def test_self_hosted_serves_local_assets_only(graphiql_assets: Path) -> None:
    page = GraphiQLPage("self-hosted", graphiql_assets)
    assert page.self_hosted
    page_html = page.html()
    assert page.html() is page_html  # cached

    urls = asset_urls(page_html)
    expected = {
        f"/graphql/assets/{p['name']}@{p['version']}/{f['path']}"
        for p in PINS["packages"]
        for f in p["files"]
    }
    assert {url for url, _ in urls} == expected
    for url, attrs in urls:
        assert not url.startswith(("http://", "https://", "//")), url
        assert str(attrs.get("integrity", "")).startswith("sha384-")
    assert "https://" not in page_html and "http://" not in page_html

    # Load order: react, react-dom, graphiql, then our bootstrap.
    scripts = [url for url, _ in urls if url.endswith(".js")]
    assert [s.split("/")[3].split("@")[0] for s in scripts] == ["react", "react-dom", "graphiql"]

    async with client_for(make_app(page)) as client:
        resp = await client.get("/graphql")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/html")
        for url in expected:
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["cache-control"].startswith("public, max-age=")
            kind = "text/css" if url.endswith(".css") else "javascript"
            assert kind in asset.headers["content-type"]
        # Only pinned files are served: not the manifest, no traversal.
        assert (await client.get("/graphql/assets/manifest.json")).status_code == 404
        assert (await client.get("/graphql/assets/nope.js")).status_code == 404
        assert (await client.get("/graphql/assets/../test_graphiql_page.py")).status_code == 404


def test_page_content(graphiql_assets: Path) -> None:
    page_html = GraphiQLPage("auto", graphiql_assets, graphql_path="/api/graphql").html()
    start = page_html.index('<script id="graphiql-config" type="application/json">')
    raw = page_html[page_html.index(">", start) + 1 : page_html.index("</script>", start)]
    config = json.loads(raw)
    assert config["url"] == "/api/graphql"
    assert "mutation ExpressInterest($input: ExpressInterestInput!)" in config["query"]
    assert json.loads(config["headers"]) == {"X-API-Key": "paste your key"}
    assert json.loads(config["variables"]) == {
        "input": {
            "candidates": [{"publicId": "ABcd2EFgHIjkLMNOp3QR-S"}],
            "additionalNotes": "Strong match",
        }
    }
    assert "GraphiQL.createFetcher({ url: cfg.url })" in page_html
    assert "isHeadersEditorEnabled: true" in page_html
    assert 'defaultEditorToolsVisibility: "headers"' in page_html
    assert len(page_html) < 5000


# --------------------------------------------------------------------------- fallbacks


def test_auto_with_empty_dir_falls_back_to_cdn_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.graphiql")
    page = GraphiQLPage("auto", tmp_path)
    page.html()
    page.html()
    page.asset_app()
    assert not page.self_hosted
    assert page.asset_app() is None
    warnings = [r for r in caplog.records if r.name == "gateway.graphiql"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "CDN" in warnings[0].getMessage() and "make assets" in warnings[0].getMessage()

    urls = asset_urls(page.html())
    assert len(urls) == sum(len(p["files"]) for p in PINS["packages"])
    for url, attrs in urls:
        assert url.startswith("https://unpkg.com/"), url
        assert str(attrs["integrity"]).startswith("sha384-")
        assert attrs["crossorigin"] == "anonymous"
    for pkg in PINS["packages"]:
        assert any(f"/{pkg['name']}@{pkg['version']}/" in url for url, _ in urls)


def test_cdn_mode_is_explicit_and_silent(
    graphiql_assets: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway.graphiql")
    page = GraphiQLPage("cdn", graphiql_assets, cdn_base="https://cdn.jsdelivr.net/npm")
    assert not page.self_hosted
    assert page.asset_app() is None
    assert not caplog.records
    assert all(u.startswith("https://cdn.jsdelivr.net/npm/") for u, _ in asset_urls(page.html()))


def test_self_hosted_with_missing_assets_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"make assets.*fetch_graphiql_assets\.py"):
        GraphiQLPage("self-hosted", tmp_path)


def test_self_hosted_with_tampered_asset_raises(graphiql_assets: Path, tmp_path: Path) -> None:
    copy = tmp_path / "assets"
    shutil.copytree(graphiql_assets, copy)
    target = next(copy.glob("graphiql@*/graphiql.min.js"))
    target.write_bytes(target.read_bytes() + b"\n// tampered")
    with pytest.raises(RuntimeError, match="integrity"):
        GraphiQLPage("self-hosted", copy)


def test_invalid_mode_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        GraphiQLPage("offline", tmp_path)  # type: ignore[arg-type]


def test_fetch_script_is_idempotent(graphiql_assets: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(FETCH_SCRIPT), "--dest", str(graphiql_assets), "--strict"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ, PATH="/nonexistent"),  # proves npm is not even needed
    )
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stderr
    assert time.monotonic() - started < 5


def test_fetch_script_rejects_integrity_mismatch(graphiql_assets: Path, tmp_path: Path) -> None:
    pins = json.loads(PINS_PATH.read_text(encoding="utf-8"))
    pins["packages"] = [p for p in pins["packages"] if p["name"] == "react"]
    good = pins["packages"][0]["integrity"]
    pins["packages"][0]["integrity"] = "sha512-" + ("A" * 86) + "=="
    bad_pins = tmp_path / "pins.json"
    bad_pins.write_text(json.dumps(pins), encoding="utf-8")
    dest = tmp_path / "dest"
    proc = subprocess.run(
        [sys.executable, str(FETCH_SCRIPT), "--dest", str(dest), "--pins", str(bad_pins)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "INTEGRITY MISMATCH" in proc.stderr and good in proc.stderr
    assert not (dest / "manifest.json").exists()


def test_fetch_script_without_npm(tmp_path: Path) -> None:
    cmd = [sys.executable, str(FETCH_SCRIPT), "--dest", str(tmp_path / "dest")]
    env = dict(os.environ, PATH="/nonexistent")
    lenient = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert lenient.returncode == 0
    assert lenient.stderr.strip().count("\n") == 0  # one line
    assert lenient.stderr.startswith("WARNING:") and "CDN" in lenient.stderr
    strict = subprocess.run(
        [*cmd, "--strict"], capture_output=True, text=True, env=env, check=False
    )
    assert strict.returncode == EXIT_UNAVAILABLE


# --------------------------------------------------------------------------- browser


@pytest.fixture
def live_server(graphiql_assets: Path) -> Iterator[tuple[str, StubGraphQL]]:
    import uvicorn

    stub = StubGraphQL()
    app = make_app(GraphiQLPage("self-hosted", graphiql_assets), stub)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", stub
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.mark.slow
def test_graphiql_renders_in_chromium(live_server: tuple[str, StubGraphQL]) -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium not installed")
    from playwright.sync_api import sync_playwright

    from tests.browser_support import (
        launch_chromium,
        read_graphiql_headers,
        read_graphiql_result,
        run_graphiql_query,
        set_graphiql_headers,
        wait_for_graphiql,
    )

    base_url, stub = live_server
    external: list[str] = []
    console_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.on(
                "console", lambda m: console_errors.append(m.text) if m.type == "error" else None
            )
            page.on("pageerror", lambda e: console_errors.append(str(e)))

            def guard(route: Any) -> None:
                if route.request.url.startswith(base_url):
                    route.continue_()
                else:
                    external.append(route.request.url)
                    route.abort()

            page.route("**/*", guard)
            page.goto(f"{base_url}/graphql")
            wait_for_graphiql(page)
            assert json.loads(read_graphiql_headers(page)) == {"X-API-Key": "paste your key"}
            query_text = page.locator(".graphiql-query-editor .CodeMirror").evaluate(
                "el => el.CodeMirror.getValue()"
            )
            assert "expressInterest(input: $input)" in query_text

            set_graphiql_headers(page, '{"X-API-Key": "test-key-123"}')
            run_graphiql_query(page)
            result = read_graphiql_result(page)
            page.wait_for_timeout(600)  # GraphiQL writes storage debounced
            stored = page.evaluate("() => JSON.stringify(Object.entries(localStorage))")

            # A reload restores the same single tab, variables included.
            page.reload()
            wait_for_graphiql(page)
            assert page.locator(".graphiql-tab").count() == 0  # tab bar hidden: one tab
            assert "ABcd2EFgHIjkLMNOp3QR-S" in page.locator(
                ".graphiql-editor-tool .graphiql-editor .CodeMirror"
            ).first.evaluate("el => el.CodeMirror.getValue()")
        finally:
            browser.close()

    assert json.loads(result) == STUB_RESULT
    assert len(stub.requests) == 1
    sent = stub.requests[0]
    assert sent["api_key"] == "test-key-123"
    assert sent["content_type"].startswith("application/json")
    assert sent["body"]["variables"] == {
        "input": {
            "candidates": [{"publicId": "ABcd2EFgHIjkLMNOp3QR-S"}],
            "additionalNotes": "Strong match",
        }
    }
    assert sent["body"]["operationName"] == "ExpressInterest"
    assert "graphiql:queries" in stored  # history was written ...
    assert "test-key-123" not in stored  # ... but the API key is never persisted
    assert external == []
    assert console_errors == []
