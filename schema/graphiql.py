"""The gateway's GraphiQL explorer page.

Assets (React, ReactDOM, GraphiQL UMD builds) are pinned in ``graphiql_assets.json`` next to this
module and fetched at setup time by ``schema/fetch_graphiql_assets.py`` (``make assets``) into an
assets directory that is never committed.  Modes:

* ``"self-hosted"``: serve the local files; missing/mismatched assets raise ``RuntimeError``.
* ``"cdn"``: load the same pinned versions from the public CDN with SRI hashes.
* ``"auto"``: self-hosted when the assets verify, else one warning and the CDN.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope

__all__ = [
    "DEFAULT_HEADERS",
    "DEFAULT_QUERY",
    "DEFAULT_VARIABLES",
    "PINS_PATH",
    "GraphiQLMode",
    "GraphiQLPage",
]

logger = logging.getLogger("gateway.graphiql")

GraphiQLMode = Literal["auto", "self-hosted", "cdn"]

PINS_PATH: Final = Path(__file__).with_name("graphiql_assets.json")
MANIFEST_NAME: Final = "manifest.json"
DEFAULT_CDN_BASE: Final = "https://unpkg.com"
FETCH_HINT: Final = "run `make assets` (python schema/fetch_graphiql_assets.py --dest {dest})"

DEFAULT_QUERY: Final = """\
mutation ExpressInterest($input: ExpressInterestInput!) {
  expressInterest(input: $input) {
    message
    jobMatchId
    jobMatch {
      id
      createdAt
      candidates {
        publicId
      }
    }
  }
}
"""
DEFAULT_VARIABLES: Final = json.dumps(
    {
        "input": {
            "candidates": [{"publicId": "ABcd2EFgHIjkLMNOp3QR-S"}],
            "additionalNotes": "Strong match",
        }
    },
    indent=2,
)
DEFAULT_HEADERS: Final = json.dumps({"X-API-Key": "paste your key"}, indent=2)

# Our own bootstrap code (no third-party code inline).  GraphiQL.createFetcher sends
# ``content-type: application/json``; the server rejects form content types (CSRF).
# * Storage wrapper: GraphiQL 3's history ("queries"/"favorites") would store request headers,
#   i.e. the API key, in localStorage even with shouldPersistHeaders=false; strip them.
# * Returning visitors: pass the active stored tab's query/variables so GraphiQL 3 re-selects
#   that tab instead of appending a new tab with empty variables on every reload.
_BOOTSTRAP_JS: Final = """\
(function () {
  var cfg = JSON.parse(document.getElementById("graphiql-config").textContent);
  var ls = null;
  try { ls = window.localStorage; } catch (e) {}
  var storage = ls && {
    getItem: function (k) { return ls.getItem(k); },
    setItem: function (k, v) {
      if (/:(queries|favorites)$/.test(k)) {
        try {
          var d = JSON.parse(v);
          Object.keys(d).forEach(function (n) {
            if (Array.isArray(d[n])) d[n].forEach(function (q) { if (q) delete q.headers; });
          });
          v = JSON.stringify(d);
        } catch (e) {}
      }
      ls.setItem(k, v);
    },
    removeItem: function (k) { ls.removeItem(k); },
    clear: function () { ls.clear(); },
    get length() { return ls.length; }
  };
  var tab = null;
  try {
    var st = JSON.parse(ls.getItem("graphiql:tabState"));
    tab = st.tabs[st.activeTabIndex] || null;
  } catch (e) {}
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({ url: cfg.url }),
      storage: storage || undefined,
      defaultQuery: cfg.query,
      defaultHeaders: cfg.headers,
      query: tab ? tab.query || "" : cfg.query,
      variables: tab ? tab.variables || "" : cfg.variables,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: "headers"
    })
  );
})();"""


@dataclass(frozen=True, slots=True)
class _Asset:
    kind: Literal["script", "style"]
    local: str  # path below the assets dir / assets_path, e.g. "graphiql@3.9.0/graphiql.min.js"
    cdn_url: str
    sri: str


def _sri(data: bytes, algo: str) -> str:
    return f"{algo}-" + base64.b64encode(hashlib.new(algo, data).digest()).decode("ascii")


def _load_assets(pins_path: Path, cdn_base: str | None) -> tuple[list[_Asset], dict[str, Any]]:
    pins = json.loads(pins_path.read_text(encoding="utf-8"))
    base = (cdn_base or pins.get("cdn_base") or DEFAULT_CDN_BASE).rstrip("/")
    assets: list[_Asset] = []
    expected_packages: list[dict[str, Any]] = []
    for pkg in pins["packages"]:
        name, version = pkg["name"], pkg["version"]
        files: list[dict[str, Any]] = []
        for f in pkg["files"]:
            rel: str = f["path"]
            local = f"{name}@{version}/{rel}"
            kind: Literal["script", "style"] = "style" if rel.endswith(".css") else "script"
            assets.append(_Asset(kind, local, f"{base}/{name}@{version}/{rel}", f["sri"]))
            files.append({"path": rel, "local": local, "sri": f["sri"]})
        expected_packages.append(
            {"name": name, "version": version, "integrity": pkg["integrity"], "files": files}
        )
    return assets, {"format": 1, "packages": expected_packages}


def _problem_with_local_assets(
    assets_dir: Path, assets: list[_Asset], expected_manifest: dict[str, Any]
) -> str | None:
    """Why the local assets cannot be used, or None when manifest and every file verify."""
    manifest_path = assets_dir / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{manifest_path} not found"
    except (OSError, ValueError) as exc:
        return f"cannot read {manifest_path}: {exc}"
    manifest.pop("generated_by", None)
    if manifest != expected_manifest:
        return f"{manifest_path} does not match the pins in {PINS_PATH.name}"
    for asset in assets:
        path = assets_dir / asset.local
        try:
            data = path.read_bytes()
        except OSError:
            return f"{path} is missing"
        if _sri(data, asset.sri.split("-", 1)[0]) != asset.sri:
            return f"{path} fails its integrity check"
    return None


class _PinnedStaticFiles(StaticFiles):
    """StaticFiles restricted to the pinned asset files, with long-lived cache headers.

    The URLs contain NAME@VERSION, so the content behind a URL never changes.
    """

    def __init__(self, *, directory: Path, allowed: frozenset[str]) -> None:
        super().__init__(directory=directory, check_dir=True)
        self._allowed = allowed

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.replace("\\", "/") not in self._allowed:
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _json_for_script(value: Any) -> str:
    """JSON safe to embed in a <script type="application/json"> element."""
    return (
        json.dumps(value)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


class GraphiQLPage:
    """Renders the GraphiQL page and (when self-hosted) the ASGI app serving its assets."""

    def __init__(
        self,
        mode: GraphiQLMode,
        assets_dir: Path,
        graphql_path: str = "/graphql",
        assets_path: str = "/graphql/assets",
        *,
        pins_path: Path = PINS_PATH,
        cdn_base: str | None = None,
        title: str = "jobmatch-gateway GraphiQL",
    ) -> None:
        if mode not in ("auto", "self-hosted", "cdn"):
            raise ValueError(f"GraphiQL mode must be 'auto', 'self-hosted' or 'cdn', not {mode!r}")
        self.mode: GraphiQLMode = mode
        self.assets_dir = Path(assets_dir)
        self.graphql_path = graphql_path
        self.assets_path = assets_path.rstrip("/")
        self._title = title
        self._assets, expected_manifest = _load_assets(pins_path, cdn_base)

        self._self_hosted = False
        if mode != "cdn":
            problem = _problem_with_local_assets(self.assets_dir, self._assets, expected_manifest)
            if problem is None:
                self._self_hosted = True
            elif mode == "self-hosted":
                raise RuntimeError(
                    f"GraphiQL mode is 'self-hosted' but the assets are not usable: {problem}; "
                    + FETCH_HINT.format(dest=self.assets_dir)
                    + " or choose GraphiQL mode 'auto' or 'cdn'"
                )
            else:
                logger.warning(
                    "GraphiQL assets not usable (%s); loading GraphiQL from the public CDN "
                    "instead. To serve them locally, %s",
                    problem,
                    FETCH_HINT.format(dest=self.assets_dir),
                )
        self._html = self._render()

    @property
    def self_hosted(self) -> bool:
        """True when the page loads the local asset files (served by :meth:`asset_app`)."""
        return self._self_hosted

    def html(self) -> str:
        """The complete HTML page (rendered once)."""
        return self._html

    def asset_app(self) -> ASGIApp | None:
        """ASGI app serving the pinned files from assets_dir, to be mounted at assets_path."""
        if not self._self_hosted:
            return None
        return _PinnedStaticFiles(
            directory=self.assets_dir, allowed=frozenset(a.local for a in self._assets)
        )

    def _tag(self, asset: _Asset) -> str:
        if self._self_hosted:
            url, extra = f"{self.assets_path}/{asset.local}", ""
        else:
            url, extra = asset.cdn_url, ' crossorigin="anonymous" referrerpolicy="no-referrer"'
        href = html.escape(url, quote=True)
        integrity = html.escape(asset.sri, quote=True)
        if asset.kind == "style":
            return f'<link rel="stylesheet" href="{href}" integrity="{integrity}"{extra}>'
        return f'<script src="{href}" integrity="{integrity}"{extra}></script>'

    def _render(self) -> str:
        config = {
            "url": self.graphql_path,
            "query": DEFAULT_QUERY,
            "variables": DEFAULT_VARIABLES,
            "headers": DEFAULT_HEADERS,
        }
        styles = "\n".join(self._tag(a) for a in self._assets if a.kind == "style")
        scripts = "\n".join(self._tag(a) for a in self._assets if a.kind == "script")
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{html.escape(self._title)}</title>
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
{styles}
</head>
<body>
<div id="graphiql">Loading GraphiQL&hellip;</div>
{scripts}
<script id="graphiql-config" type="application/json">{_json_for_script(config)}</script>
<script>
{_BOOTSTRAP_JS}
</script>
</body>
</html>
"""
