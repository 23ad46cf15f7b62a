"""Shared fixtures: a clean, migrated database per test (SQLite file, or the PostgreSQL named by
GATEWAY_TEST_DATABASE_URL), the app over it, and API keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from gateway import api_keys, migrate
from gateway.candidates import add_candidates
from gateway.database import create_sync_engine
from gateway.scopes import ALL_SCOPES, Scope
from gateway.settings import Settings

POSTGRES_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")
EXAMPLE_ID = "ABcd2EFgHIjkLMNOp3QR-S"


# Each test session gets its own PostgreSQL schema (via search_path), so that concurrent runs
# on one database cannot trample each other; each test starts from an empty schema.
PG_SCHEMA = f"gw_test_{os.getpid()}"


def postgres_test_url(base: str) -> str:
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{PG_SCHEMA}"


def _reset_postgres(url: str) -> None:
    engine = create_sync_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
            connection.exec_driver_sql(f"CREATE SCHEMA {PG_SCHEMA}")
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise  # under CI a missing PostgreSQL is a failure, never a skip
        pytest.skip(f"PostgreSQL unreachable: {exc.orig}")
    finally:
        engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """An empty database, not yet migrated."""
    if POSTGRES_URL:
        url = postgres_test_url(POSTGRES_URL)
        _reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path / 'gateway.sqlite3'}"


@pytest.fixture
def migrated_url(database_url: str) -> str:
    engine = create_sync_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    return database_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[sa.Engine]:
    engine = create_sync_engine(migrated_url)
    yield engine
    engine.dispose()


def test_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "rate_limit_per_hour": 0,
        "key_cache_seconds": 0,
        "graphiql_assets": "cdn",
        "log_format": "json",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def make_client(migrated_url: str) -> Iterator[Callable[..., TestClient]]:
    """Build a client over a fresh app; keyword arguments override settings."""
    from gateway.app import create_app

    clients: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        database_url = str(overrides.pop("database_url", migrated_url))
        client = TestClient(
            create_app(test_settings(database_url, **overrides)), raise_server_exceptions=False
        )
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@dataclass
class Keys:
    engine: sa.Engine

    def create(
        self,
        client: str = "Acme Recruiting",
        scopes: tuple[Scope, ...] = ALL_SCOPES,
        **kwargs: object,
    ) -> str:
        with self.engine.begin() as connection:
            return api_keys.create_key(connection, client, scopes, **kwargs).key  # type: ignore[arg-type]


@pytest.fixture
def keys(engine: sa.Engine) -> Keys:
    return Keys(engine)


@pytest.fixture
def key(keys: Keys) -> str:
    return keys.create()


@pytest.fixture
def candidates(engine: sa.Engine) -> list[str]:
    ids = [EXAMPLE_ID] + [f"cand-{i:04d}-{uuid.uuid4().hex[:6]}" for i in range(120)]
    with engine.begin() as connection:
        add_candidates(connection, ids)
    return ids


def count_rows(engine: sa.Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"):
            self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_statements(client: TestClient) -> Iterator[Callable[[], StatementCounter]]:
    """Count the SQL statements the app runs (BEGIN/COMMIT excluded)."""
    engines = client.app.state.services.database.statement_engines()  # type: ignore[attr-defined]
    counters: list[StatementCounter] = []

    def start() -> StatementCounter:
        counter = StatementCounter()
        for engine in engines:
            sa.event.listen(engine, "before_cursor_execute", counter)
        counters.append(counter)
        return counter

    yield start
    for counter in counters:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", counter)


@pytest.fixture(scope="session", autouse=True)
def _drop_postgres_schema() -> Iterator[None]:
    yield
    if POSTGRES_URL:
        engine = create_sync_engine(POSTGRES_URL)
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        engine.dispose()
