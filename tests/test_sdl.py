"""schema/schema.graphql is the committed contract of the GraphQL face: it must be exactly what
`gateway schema export` writes for the code as it stands, so a schema change shows up in review."""

from __future__ import annotations

import difflib
from pathlib import Path

from gateway.settings import Settings
from schema import build_schema

SDL_PATH = Path(__file__).resolve().parent.parent / "schema" / "schema.graphql"
REGENERATE = "gateway schema export schema/schema.graphql  (or: make schema)"


def live_sdl() -> str:
    # What `gateway schema export` writes (the SDL does not depend on the settings).
    return build_schema(Settings()).as_str() + "\n"


def test_committed_sdl_matches_the_live_schema():
    assert SDL_PATH.exists(), f"{SDL_PATH} is missing; generate it with: {REGENERATE}"
    committed = SDL_PATH.read_text(encoding="utf-8")
    live = live_sdl()
    if committed != live:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                live.splitlines(keepends=True),
                "schema/schema.graphql (committed)",
                "live schema",
            )
        )
        raise AssertionError(
            "schema/schema.graphql is out of date with the code. If the change is intended, "
            f"regenerate it with `{REGENERATE}` and commit the result.\n{diff}"
        )


def test_sdl_does_not_depend_on_settings():
    """The export is the same in production (no introspection, no suggestions) as in development,
    so one committed file describes every deployment."""
    production = build_schema(Settings(env="production")).as_str() + "\n"
    assert production == live_sdl()
