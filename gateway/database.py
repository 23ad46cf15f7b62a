"""Engines and transactions.

The service code is written once, as synchronous SQLAlchemy Core against a ``Connection``.
``Database.transaction`` decides how it runs:

- SQLite (embedded): directly on the caller's thread. Statements on a local WAL file take
  microseconds; a thread-pool hop per request would cost more than the work.
- PostgreSQL: through the async engine's ``run_sync``, which drives the same code on psycopg's
  asyncio connection, so network waits never block the event loop.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.errors import ServiceUnavailable

logger = logging.getLogger("gateway.database")
T = TypeVar("T")
Work = Callable[[sa.Connection], T]
BeginMode = Literal["read", "write"]

SQLITE_BUSY_TIMEOUT_MS = 5000
CHECKPOINT_INTERVAL_SECONDS = 1.0
BEGIN_MODE = "gateway_begin"


def normalize_url(url: str) -> sa.URL:
    """Accept ``postgres://`` and ``postgresql://`` and pin the psycopg (v3) driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _configure_sqlite(engine: sa.Engine, background_checkpoints: bool) -> None:
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
        cursor.close()

    @event.listens_for(engine, "connect")
    def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
        # Checkpoints run in SqliteCheckpointer's thread, not inside a request's COMMIT; the
        # CLI's short-lived connections leave it on so their WAL is folded back as usual.
        if background_checkpoints:
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

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


def create_sync_engine(
    url: str, pool_size: int = 5, background_checkpoints: bool = False
) -> sa.Engine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, connect_args={"check_same_thread": False}, hide_parameters=True
        )
        _configure_sqlite(engine, background_checkpoints)
        return engine
    return sa.create_engine(
        parsed, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True
    )


class SqliteCheckpointer:
    """Folds the WAL back into the database file from a thread of its own, so that no request
    pays for a checkpoint. PASSIVE never waits for (or blocks) readers and writers."""

    def __init__(self, path: str, interval: float = CHECKPOINT_INTERVAL_SECONDS) -> None:
        self._path = path
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        connection = sqlite3.connect(self._path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            while not self._stop.wait(self._interval):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    logger.warning("WAL checkpoint failed: %s", exc)
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class Database:
    """The gateway's storage: one sync engine (SQLite, CLI, migrations) and, on PostgreSQL,
    an async engine for request handling."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = normalize_url(url)
        self.dialect = self.url.get_backend_name()
        file_backed = self.dialect == "sqlite" and self.url.database not in (None, "", ":memory:")
        self.sync_engine = create_sync_engine(
            url, pool_size=min(pool_size, 5), background_checkpoints=file_backed
        )
        self.async_engine: AsyncEngine | None = None
        self._sqlite_connection: sa.Connection | None = None
        self._checkpointer: SqliteCheckpointer | None = None
        if self.dialect == "postgresql":
            # hide_parameters: error messages (and so logs) never carry notes or key hashes.
            self.async_engine = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_timeout=5,
                hide_parameters=True,
            )
        elif file_backed:
            self._checkpointer = SqliteCheckpointer(str(self.url.database))

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    def start(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.start()

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
        if self._checkpointer is not None:
            self._checkpointer.stop()
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
