"""API keys: creation, listing and revocation, shared by the CLI and the demo seed.

A key reads ``jmk_<43 url-safe characters>`` (32 random bytes), so secret scanners can spot a
leaked one. Only its SHA-256 hash is stored; the plaintext is returned once, at creation.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from gateway import models
from gateway.models import as_utc, utcnow
from gateway.scopes import Scope, format_scopes, parse_scopes

KEY_PREFIX = "jmk_"
KEY_RANDOM_BYTES = 32
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 8


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


@dataclass(frozen=True)
class CreatedKey:
    id: int
    key: str  # plaintext: shown once, never stored
    client: str
    scopes: tuple[str, ...]
    expires_at: datetime | None


@dataclass(frozen=True)
class KeySummary:
    id: int
    prefix: str
    client: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and as_utc(self.expires_at) <= utcnow():
            return "expired"
        return "active"


def ensure_client(connection: sa.Connection, name: str) -> int:
    found = connection.execute(
        sa.select(models.api_client.c.id).where(models.api_client.c.name == name)
    ).scalar()
    if found is not None:
        return int(found)
    return int(
        connection.execute(
            sa.insert(models.api_client)
            .values(name=name, created_at=utcnow())
            .returning(models.api_client.c.id)
        ).scalar_one()
    )


def create_key(
    connection: sa.Connection,
    client: str,
    scopes: tuple[Scope, ...],
    expires_in: timedelta | None = None,
) -> CreatedKey:
    client_id = ensure_client(connection, client)
    plaintext = generate_key()
    now = utcnow()
    expires_at = now + expires_in if expires_in is not None else None
    key_id = connection.execute(
        sa.insert(models.api_key)
        .values(
            client_id=client_id,
            prefix=plaintext[:DISPLAY_PREFIX_LENGTH],
            key_hash=hash_key(plaintext),
            scopes=format_scopes(scopes),
            created_at=now,
            expires_at=expires_at,
        )
        .returning(models.api_key.c.id)
    ).scalar_one()
    return CreatedKey(
        id=int(key_id),
        key=plaintext,
        client=client,
        scopes=tuple(sorted(str(s) for s in scopes)),
        expires_at=expires_at,
    )


def list_keys(connection: sa.Connection) -> list[KeySummary]:
    k, c = models.api_key, models.api_client
    rows = connection.execute(
        sa.select(
            k.c.id,
            k.c.prefix,
            c.c.name,
            k.c.scopes,
            k.c.created_at,
            k.c.last_used_at,
            k.c.expires_at,
            k.c.revoked_at,
        )
        .join(c, c.c.id == k.c.client_id)
        .order_by(k.c.id)
    ).all()
    return [
        KeySummary(
            id=row.id,
            prefix=row.prefix,
            client=row.name,
            scopes=tuple(sorted(str(s) for s in parse_scopes(row.scopes))),
            created_at=as_utc(row.created_at),
            last_used_at=as_utc(row.last_used_at) if row.last_used_at else None,
            expires_at=as_utc(row.expires_at) if row.expires_at else None,
            revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
        )
        for row in rows
    ]


def revoke_key(connection: sa.Connection, key_id: int) -> bool:
    """Revoke a key; False if there is no such key. Revoking twice keeps the first time."""
    k = models.api_key
    exists = connection.execute(sa.select(k.c.id).where(k.c.id == key_id)).scalar()
    if exists is None:
        return False
    connection.execute(
        sa.update(k).where(k.c.id == key_id, k.c.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    return True


def revoke_client_keys(connection: sa.Connection, client_id: int) -> None:
    k = models.api_key
    connection.execute(
        sa.update(k)
        .where(k.c.client_id == client_id, k.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
