"""The ``gateway`` command: serve, migrate, keys, candidates, demo, schema."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from gateway import api_keys, migrate
from gateway.candidates import ImportFileError, add_candidates, check_public_id, read_public_ids
from gateway.database import begin_write, create_sync_engine
from gateway.demo import seed_demo
from gateway.scopes import ALL_SCOPES, Scope
from gateway.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="jobmatch-gateway: GraphQL + REST gateway for expressions of interest.",
)
keys_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys.")
candidates_app = typer.Typer(no_args_is_help=True, help="Load candidates.")
schema_app = typer.Typer(no_args_is_help=True, help="The GraphQL schema (SDL).")
app.add_typer(keys_app, name="keys")
app.add_typer(candidates_app, name="candidates")
app.add_typer(schema_app, name="schema")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit status 1."""


def _settings() -> Settings:
    return load_settings()


@contextmanager
def _write_transaction(settings: Settings) -> Iterator[sa.Connection]:
    engine = create_sync_engine(settings.database_url)
    try:
        with engine.connect() as connection, begin_write(connection):
            yield connection
    finally:
        engine.dispose()


def _require_schema(connection: sa.Connection) -> None:
    if migrate.current_revision(connection) != migrate.head_revision():
        raise CliError("the database is not migrated: run `gateway migrate` first")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    graceful_timeout: Annotated[
        int, typer.Option(help="Seconds in-flight requests get to finish on SIGTERM.")
    ] = 30,
) -> None:
    """Serve GraphQL at /graphql and REST at /v1/candidates/job-match."""
    import uvicorn

    settings = _settings()
    engine = create_sync_engine(settings.database_url)
    try:
        if settings.is_sqlite:
            migrate.upgrade(engine)  # the embedded default sets itself up
        else:
            with engine.connect() as connection:
                _require_schema(connection)
    finally:
        engine.dispose()
    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # The stdlib loop, not uvloop: libuv accepts one connection per loop iteration, so
        # on a saturated worker each new client waited one more round of every other
        # client's requests (up to 0.6 s at 32 connections); asyncio accepts all that are
        # pending at once, at the same throughput here (docs/performance.md, "Tails").
        loop="asyncio",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=graceful_timeout,
        proxy_headers=True,
        server_header=False,
    )


@app.command("migrate")
def migrate_command() -> None:
    """Apply every pending migration."""
    settings = _settings()
    engine = create_sync_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        with engine.connect() as connection:
            revision = migrate.current_revision(connection)
    finally:
        engine.dispose()
    out.print(f"database at revision {revision}")


@keys_app.command("create")
def keys_create(
    client: Annotated[str, typer.Option(help="Client (employer/recruiter) name.")],
    scope: Annotated[
        list[Scope] | None, typer.Option(help="Scope to grant; repeat for several.")
    ] = None,
    expires_in: Annotated[int | None, typer.Option(min=1, help="Days until expiry.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an API key (and the client, if new). The key is shown once."""
    if not client.strip():
        raise CliError("--client must not be empty")
    scopes = tuple(dict.fromkeys(scope)) if scope else ALL_SCOPES
    with _write_transaction(_settings()) as connection:
        _require_schema(connection)
        created = api_keys.create_key(
            connection,
            client.strip(),
            scopes,
            timedelta(days=expires_in) if expires_in else None,
        )
    if as_json:
        payload = {
            "id": created.id,
            "key": created.key,
            "client": created.client,
            "scopes": list(created.scopes),
        }
        print(json.dumps(payload))
        return
    out.print(f"Created key {created.id} for {created.client} ({' '.join(created.scopes)}).")
    out.print("Store it now; it is not shown again:")
    out.print(created.key)


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys by id and prefix (never the keys themselves)."""
    with _write_transaction(_settings()) as connection:
        _require_schema(connection)
        keys = api_keys.list_keys(connection)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "id": k.id,
                        "prefix": k.prefix,
                        "client": k.client,
                        "scopes": list(k.scopes),
                        "status": k.status,
                        "created_at": k.created_at.isoformat(),
                        "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                        "expires_at": k.expires_at.isoformat() if k.expires_at else None,
                        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                    }
                    for k in keys
                ]
            )
        )
        return
    table = Table("id", "prefix", "client", "scopes", "status", "last used", "expires")
    for k in keys:
        table.add_row(
            str(k.id),
            k.prefix + "…",
            k.client,
            " ".join(k.scopes),
            k.status,
            _when(k.last_used_at),
            _when(k.expires_at),
        )
    out.print(table)


def _when(moment: object) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"  # type: ignore[attr-defined]


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see keys list).")],
) -> None:
    """Revoke a key: it is refused from then on."""
    with _write_transaction(_settings()) as connection:
        _require_schema(connection)
        if not api_keys.revoke_key(connection, key_id):
            raise CliError(f"no API key with id {key_id}")
    out.print(f"Revoked key {key_id}.")


@candidates_app.command("add")
def candidates_add(
    public_ids: Annotated[list[str], typer.Argument(help="Candidate public ids.")],
) -> None:
    """Add candidates by public id."""
    problems = [f"{pid!r}: {reason}" for pid in public_ids if (reason := check_public_id(pid))]
    if problems:
        raise CliError("; ".join(problems))
    with _write_transaction(_settings()) as connection:
        _require_schema(connection)
        report = add_candidates(connection, list(dict.fromkeys(public_ids)))
    _print_report(report.added, report.already_present)


@candidates_app.command("import")
def candidates_import(
    path: Annotated[Path, typer.Argument(help="CSV with a publicId header, or JSON lines.")],
) -> None:
    """Import candidates from a file: all rows are checked first, then written at once."""
    try:
        public_ids = read_public_ids(path)
    except ImportFileError as exc:
        shown = exc.problems[:20]
        more = f" (and {len(exc.problems) - 20} more)" if len(exc.problems) > 20 else ""
        raise CliError(f"{path}: nothing imported: " + "; ".join(shown) + more) from None
    with _write_transaction(_settings()) as connection:
        _require_schema(connection)
        with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task("importing", total=len(public_ids))
            report = add_candidates(
                connection, public_ids, on_progress=lambda n: progress.advance(task, n)
            )
    _print_report(report.added, report.already_present)


def _print_report(added: int, already_present: list[str]) -> None:
    out.print(f"added {added} candidates; {len(already_present)} already present")
    if already_present and len(already_present) <= 20:
        out.print("already present: " + ", ".join(already_present))


@app.command()
def demo() -> None:
    """Seed demo data and print a fresh demo key (replacing the previous one)."""
    settings = _settings()
    engine = create_sync_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    with _write_transaction(settings) as connection:
        seeded = seed_demo(connection)
    base = settings.public_url or "http://127.0.0.1:8000"
    body = json.dumps(
        {
            "candidates": [{"publicId": seeded.candidate_ids[0]}],
            "additionalNotes": "Strong match for the role.",
        }
    )
    out.print(f"Demo client: {seeded.client}  candidates: {', '.join(seeded.candidate_ids)}")
    out.print(f"Demo API key (shown once): {seeded.key}")
    out.print("Try it:")
    out.print(
        f"  curl -i -X POST {base}/v1/candidates/job-match -H 'Content-Type: "
        f"application/json' -H 'X-API-Key: {seeded.key}' -d '{body}'"
    )
    out.print(f"GraphiQL: {base}/graphql   OpenAPI docs: {base}/docs")


@schema_app.command("export")
def schema_export(
    path: Annotated[Path | None, typer.Argument(help="File to write; stdout if omitted.")] = None,
) -> None:
    """Write the GraphQL schema as SDL."""
    from schema import build_schema

    sdl = build_schema(_settings()).as_str() + "\n"  # invalid settings: one line, not a traceback
    if path is None:
        sys.stdout.write(sdl)
    else:
        path.write_text(sdl, encoding="utf-8")
        out.print(f"wrote {path}")


def main() -> None:
    try:
        app(standalone_mode=False)
    except SettingsError as exc:
        err.print(f"error: {exc}")
        sys.exit(2)
    except CliError as exc:
        err.print(f"error: {exc}")
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except (__import__("click").exceptions.ClickException, typer.TyperException) as exc:
        # Usage errors: typer vendors its own click, whose exceptions are TyperExceptions.
        exc.show() if hasattr(exc, "show") else err.print(f"error: {exc.format_message()}")
        sys.exit(exc.exit_code)
    except sa.exc.OperationalError as exc:
        # One line: drivers put hints on further lines (psycopg: "Is the server running...").
        err.print(f"error: cannot use the database: {' '.join(str(exc.orig).split())}")
        sys.exit(1)
    except sa.exc.SQLAlchemyError as exc:
        err.print(f"error: database error: {type(exc).__name__}")
        sys.exit(1)
    except OSError as exc:  # e.g. the SQLite directory or the export path cannot be created
        err.print(f"error: {exc}")
        sys.exit(1)
