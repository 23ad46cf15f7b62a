"""Playwright helpers for driving the GraphiQL 3 explorer in the system Chromium.

GraphiQL 3.x uses CodeMirror **5** editors (not CodeMirror 6; GraphiQL 4+ moved to Monaco).  Each
editor's wrapper element ``.CodeMirror`` carries the editor instance as ``element.CodeMirror``,
which we use to *read back* values.  Text is entered the way a user would: click into the editor,
Control+A, Delete, then ``keyboard.insert_text`` (a single input event, so CodeMirror's
auto-close-brackets and auto-indent do not mangle the JSON), then the value is verified.

Never run ``playwright install`` here: we use Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM_PATH: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]

# Selectors for GraphiQL 3.x (checked against graphiql@3.9.0).
CONTAINER: Final = ".graphiql-container"
QUERY_EDITOR: Final = ".graphiql-query-editor .CodeMirror"
HEADERS_TAB: Final = ".graphiql-editor-tools button:has-text('Headers')"
# The variables and headers editors are siblings; the inactive one has the class "hidden".
VISIBLE_TOOL_EDITOR: Final = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
EXECUTE_BUTTON: Final = "button.graphiql-execute-button"
RESULT_EDITOR: Final = ".result-window .CodeMirror"

_GET_CM_VALUE: Final = "el => el.CodeMirror ? el.CodeMirror.getValue() : el.innerText"


def launch_chromium(playwright: Playwright) -> Browser:
    """A headless Debian Chromium (no downloaded browsers, no background network)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM_PATH, headless=True, args=list(CHROMIUM_ARGS)
    )


def wait_for_graphiql(page: Page, timeout_ms: float = 15_000) -> None:
    """Wait until GraphiQL has rendered its query editor and the headers tab."""
    page.wait_for_selector(CONTAINER, timeout=timeout_ms)
    page.wait_for_selector(QUERY_EDITOR, timeout=timeout_ms)
    page.wait_for_selector(HEADERS_TAB, timeout=timeout_ms)


def open_headers_editor(page: Page) -> None:
    """Make the headers editor the visible tool editor (idempotent)."""
    tab = page.locator(HEADERS_TAB)
    tab.wait_for()
    headers_active = tab.evaluate("b => b.classList.contains('active')")
    tools_open = page.locator(VISIBLE_TOOL_EDITOR).count() > 0
    if not (headers_active and tools_open):
        tab.click()
    page.locator(VISIBLE_TOOL_EDITOR).wait_for(state="visible")


def read_graphiql_headers(page: Page) -> str:
    open_headers_editor(page)
    return str(page.locator(VISIBLE_TOOL_EDITOR).evaluate(_GET_CM_VALUE))


def set_graphiql_headers(page: Page, headers_json: str) -> None:
    """Replace the headers editor's text with headers_json, typed like a user, and verify it."""
    open_headers_editor(page)
    editor = page.locator(VISIBLE_TOOL_EDITOR)
    editor.locator(".CodeMirror-lines").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(headers_json)
    actual = str(editor.evaluate(_GET_CM_VALUE))
    if actual != headers_json:
        raise AssertionError(f"headers editor holds {actual!r}, expected {headers_json!r}")
    # Let GraphiQL's debounced onChange propagate the value into its state before running.
    page.wait_for_timeout(300)


def run_graphiql_query(page: Page) -> None:
    """Click GraphiQL's run (execute) button."""
    page.locator(EXECUTE_BUTTON).click()


def read_graphiql_result(page: Page, timeout_ms: float = 15_000) -> str:
    """Wait for a non-empty result pane and return its text (JSON as GraphiQL prints it)."""
    editor = page.locator(RESULT_EDITOR)
    editor.wait_for(timeout=timeout_ms)
    page.wait_for_function(
        "sel => { const el = document.querySelector(sel);"
        " return !!el && !!el.CodeMirror && el.CodeMirror.getValue().trim().length > 0; }",
        arg=RESULT_EDITOR,
        timeout=timeout_ms,
    )
    return str(editor.evaluate(_GET_CM_VALUE))


def read_graphiql_result_json(page: Page, timeout_ms: float = 15_000) -> object:
    return json.loads(read_graphiql_result(page, timeout_ms))
