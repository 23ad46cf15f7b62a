"""Who is calling: API key lookup by hash, with a short-lived cache and throttled last-use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from time import monotonic

import sqlalchemy as sa

from gateway import models
from gateway.api_keys import KEY_PREFIX, hash_key
from gateway.database import Database
from gateway.errors import Forbidden, Unauthenticated
from gateway.models import as_utc, utcnow
from gateway.scopes import Scope, parse_scopes

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Principal:
    """The calling client, as identified by one of its API keys."""

    key_id: int
    client_id: int
    client_name: str
    scopes: frozenset[Scope]
    expires_at: datetime | None

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            if scope is Scope.JOB_MATCH_WRITE:
                raise Forbidden("You do not have permission to submit job matches.")
            raise Forbidden("You do not have permission to read job matches.")


_LOOKUP = (
    sa.select(
        models.api_key.c.id,
        models.api_key.c.client_id,
        models.api_client.c.name,
        models.api_key.c.scopes,
        models.api_key.c.expires_at,
        models.api_key.c.revoked_at,
    )
    .join(models.api_client, models.api_client.c.id == models.api_key.c.client_id)
    .where(models.api_key.c.key_hash == sa.bindparam("key_hash"))
)


class Authenticator:
    """Resolves an ``X-API-Key`` value to a :class:`Principal`.

    Valid keys are cached for ``cache_seconds`` (a revocation takes effect within that time on
    every replica); expiry is checked on every request, so it is exact. ``last_used_at`` is
    written at most once per ``last_used_interval`` per key and process, not on every request.
    """

    def __init__(self, database: Database, cache_seconds: float, last_used_interval: float):
        self._database = database
        self._cache_seconds = cache_seconds
        self._last_used_interval = last_used_interval
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._last_used_written: dict[int, float] = {}

    async def authenticate(self, raw_key: str | None) -> Principal:
        if not raw_key:
            raise Unauthenticated("An API key is required in the X-API-Key header.")
        if len(raw_key) > MAX_KEY_LENGTH or not raw_key.startswith(KEY_PREFIX):
            raise Unauthenticated("Invalid API key.")
        key_hash = hash_key(raw_key)
        now = monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > now:
            principal = cached[1]
        else:
            principal = await self._database.run(lambda c: self._lookup(c, key_hash))
            if self._cache_seconds > 0:
                if len(self._cache) > 10_000:  # bound memory against key-guessing floods
                    self._cache.clear()
                self._cache[key_hash] = (now + self._cache_seconds, principal)
        if principal.expires_at is not None and principal.expires_at <= utcnow():
            self._cache.pop(key_hash, None)
            raise Unauthenticated("The API key has expired.")
        await self._touch(principal, now)
        return principal

    @staticmethod
    def _lookup(connection: sa.Connection, key_hash: str) -> Principal:
        row = connection.execute(_LOOKUP, {"key_hash": key_hash}).first()
        if row is None:
            raise Unauthenticated("Invalid API key.")
        if row.revoked_at is not None:
            raise Unauthenticated("The API key has been revoked.")
        return Principal(
            key_id=row.id,
            client_id=row.client_id,
            client_name=row.name,
            scopes=parse_scopes(row.scopes),
            expires_at=as_utc(row.expires_at) if row.expires_at else None,
        )

    async def _touch(self, principal: Principal, now: float) -> None:
        last = self._last_used_written.get(principal.key_id)
        if last is not None and now - last < self._last_used_interval:
            return
        self._last_used_written[principal.key_id] = now
        statement = (
            sa.update(models.api_key)
            .where(models.api_key.c.id == principal.key_id)
            .values(last_used_at=utcnow())
        )
        await self._database.run(lambda c: c.execute(statement), mode="write")
