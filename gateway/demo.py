"""The demo seed behind ``make run``: idempotent data, and a fresh key every time."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from gateway import api_keys
from gateway.candidates import add_candidates
from gateway.scopes import ALL_SCOPES

DEMO_CLIENT = "Demo Recruiting Ltd"
DEMO_CANDIDATES = (
    "ABcd2EFgHIjkLMNOp3QR-S",  # the published contract's example id
    "Zx9yW8vU7tS6rQ5pO4nM3L",
    "Kj2Hg3Fd4Sa5Qw6Er7Ty8U",
    "Pl0Ok9Ij8Uh7Yg6Tf5Rd4E",
)


@dataclass(frozen=True)
class DemoSeed:
    client: str
    key: str
    candidate_ids: tuple[str, ...]


def seed_demo(connection: sa.Connection) -> DemoSeed:
    client_id = api_keys.ensure_client(connection, DEMO_CLIENT)
    # Only the newest demo key works, so a printed key is never stale.
    api_keys.revoke_client_keys(connection, client_id)
    created = api_keys.create_key(connection, DEMO_CLIENT, ALL_SCOPES)
    add_candidates(connection, list(DEMO_CANDIDATES))
    return DemoSeed(DEMO_CLIENT, created.key, DEMO_CANDIDATES)
