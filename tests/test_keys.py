"""API keys seen from outside: last use is kept current without a write per request, and the
per-process key cache never outlives a revocation by more than its setting."""

from __future__ import annotations

import sqlalchemy as sa

from gateway import api_keys
from tests.conftest import EXAMPLE_ID
from tests.test_rest import ROUTE, assert_problem


def _post(client, key):
    return client.post(
        ROUTE, json={"candidates": [{"publicId": EXAMPLE_ID}]}, headers={"X-API-Key": key}
    )


def _last_used(engine):
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT last_used_at FROM api_key")).scalar_one()


def test_last_used_is_written_at_most_once_per_interval(make_client, key, candidates, engine):
    client = make_client(key_last_used_interval_seconds=3600)
    assert _last_used(engine) is None
    assert _post(client, key).status_code == 201
    first = _last_used(engine)
    assert first is not None
    for _ in range(3):
        assert _post(client, key).status_code == 201
    assert _last_used(engine) == first  # no write per request


def test_last_used_follows_every_request_when_the_interval_is_zero(
    make_client, key, candidates, engine
):
    client = make_client(key_last_used_interval_seconds=0)
    assert _post(client, key).status_code == 201
    first = _last_used(engine)
    assert _post(client, key).status_code == 201
    assert _last_used(engine) > first


def test_a_revoked_key_is_refused_once_the_cache_entry_expires(
    make_client, key, candidates, engine, monkeypatch
):
    import gateway.auth

    now = [1000.0]
    monkeypatch.setattr(gateway.auth, "monotonic", lambda: now[0])
    client = make_client(key_cache_seconds=5)
    assert _post(client, key).status_code == 201
    with engine.begin() as connection:
        api_keys.revoke_key(connection, api_keys.list_keys(connection)[0].id)
    now[0] += 4.9  # within the cache's lifetime: the documented revocation delay
    assert _post(client, key).status_code == 201
    now[0] += 0.2
    problem = assert_problem(
        _post(client, key), 401, "authentication-required", "Authentication required"
    )
    assert "revoked" in problem["detail"]


def test_expiry_is_checked_on_every_request_even_when_cached(
    make_client, keys, candidates, monkeypatch
):
    from datetime import timedelta

    import gateway.auth
    from gateway.models import utcnow

    key = keys.create(expires_in=timedelta(hours=1))
    client = make_client(key_cache_seconds=3600)
    assert _post(client, key).status_code == 201
    later = utcnow() + timedelta(hours=2)
    monkeypatch.setattr(gateway.auth, "utcnow", lambda: later)
    problem = assert_problem(
        _post(client, key), 401, "authentication-required", "Authentication required"
    )
    assert "expired" in problem["detail"]
