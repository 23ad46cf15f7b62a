"""Engines and transactions.

The service code is written once, as synchronous SQLAlchemy Core against a ``Connection``.
``Database.transaction`` decides how it runs:

- SQLite (embedded): directly on the caller's thread. Statements on a local WAL file take
  microseconds; a thread-pool hop per request would cost more than the work.
- PostgreSQL: through the async engine's ``run_sync``, which drives the same code on psycopg's
  asyncio connection, so network waits never block the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.errors import ServiceUnavailable

T = TypeVar("T")
Work = Callable[[sa.Connection], T]
BeginMode = Literal["read", "write"]

SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_CACHE_KIB = 64 * 1024
BEGIN_MODE = "gateway_begin"


def normalize_url(url: str) -> sa.URL:
    """Accept ``postgres://`` and ``postgresql://`` and pin the psycopg (v3) driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _configure_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own handling
        # would defer it and cannot take the write lock up front).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # The default 2 MB page cache is outgrown by the indexes of a few ten thousand job
        # matches; beyond it lookups and inserts go back to the file. (SQLite allocates the
        # cache as it fills, up to this bound.)
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Writers take the lock at BEGIN: a deferred transaction that upgrades to a writer later
        # fails with SQLITE_BUSY instead of waiting out the busy timeout. The mode is one-shot,
        # set by begin_write() just before.
        mode = connection.info.pop(BEGIN_MODE, "read")
        connection.connection.dbapi_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if mode == "write" else "BEGIN"
        )


def begin_write(connection: sa.Connection) -> sa.RootTransaction:
    """Begin a transaction that writes (on SQLite: holding the write lock from the start)."""
    connection.info[BEGIN_MODE] = "write"
    return connection.begin()


def create_sync_engine(url: str, pool_size: int = 5) -> sa.Engine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, connect_args={"check_same_thread": False}, hide_parameters=True
        )
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(
        parsed, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True
    )


class Database:
    """The gateway's storage: one sync engine (SQLite, CLI, migrations) and, on PostgreSQL,
    an async engine for request handling."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = normalize_url(url)
        self.dialect = self.url.get_backend_name()
        self.sync_engine = create_sync_engine(url, pool_size=min(pool_size, 5))
        self.async_engine: AsyncEngine | None = None
        self._sqlite_connection: sa.Connection | None = None
        if self.dialect == "postgresql":
            # hide_parameters: error messages (and so logs) never carry notes or key hashes.
            self.async_engine = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_timeout=5,
                hide_parameters=True,
            )

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    def _sqlite(self) -> sa.Connection:
        # All SQLite work runs synchronously on the event loop's thread, one transaction at a
        # time, so one long-lived connection serves every request without pool round trips.
        connection = self._sqlite_connection
        if connection is None or connection.closed or connection.invalidated:
            connection = self._sqlite_connection = self.sync_engine.connect()
        return connection

    async def run(self, work: Work[T], mode: BeginMode = "read") -> T:
        """Run ``work`` in one transaction: committed if it returns, rolled back if it raises."""
        try:
            if self.async_engine is None:
                connection = self._sqlite()
                with begin_write(connection) if mode == "write" else connection.begin():
                    return work(connection)
            async with self.async_engine.begin() as connection:
                return await connection.run_sync(work)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            # The database is down, restarting or locked past the busy timeout: tell the client
            # to retry instead of failing as if the request were wrong.
            self._discard_sqlite_connection()
            raise ServiceUnavailable("The database is unavailable. Please retry shortly.") from exc
        except sa.exc.TimeoutError as exc:  # connection pool exhausted
            raise ServiceUnavailable("The gateway is busy. Please retry shortly.") from exc

    def _discard_sqlite_connection(self) -> None:
        if self._sqlite_connection is not None:
            self._sqlite_connection.invalidate()
            self._sqlite_connection = None

    def pool_in_use(self) -> int:
        if self.async_engine is None:
            connection = self._sqlite_connection  # the one request connection, busy or idle
            return int(connection is not None and connection.in_transaction())
        pool = self.async_engine.sync_engine.pool
        checked_out = getattr(pool, "checkedout", None)
        return int(checked_out()) if callable(checked_out) else 0

    async def dispose(self) -> None:
        if self._sqlite_connection is not None:
            self._sqlite_connection.close()
            self._sqlite_connection = None
        if self.async_engine is not None:
            await self.async_engine.dispose()
        self.sync_engine.dispose()

    def statement_engines(self) -> list[sa.Engine]:
        """The engines whose statements a test may want to count."""
        engines = [self.sync_engine]
        if self.async_engine is not None:
            engines.append(self.async_engine.sync_engine)
        return engines
