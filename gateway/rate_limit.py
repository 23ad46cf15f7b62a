"""Per-key token buckets, one budget per key shared by both faces.

A bucket holds up to ``burst`` tokens and refills at ``per_hour / 3600`` tokens a second; each
request takes one. In-process by default; with Redis the bucket lives in one hash per key and
a Lua script updates it atomically, so every replica draws on the same budget.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.errors import RateLimited, ServiceUnavailable

logger = logging.getLogger("gateway.rate_limit")


@dataclass(frozen=True)
class RateLimitStatus:
    limit: int  # bucket size (burst)
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after: int  # until the next token, when none is left
    window_seconds: int  # time to refill an empty bucket
    allowed: bool

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"per-key";q={self.limit};w={self.window_seconds}',
            "RateLimit": f'"per-key";r={self.remaining};t={self.reset_seconds}',
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


class BucketStore(Protocol):
    async def take(self, key: str, capacity: int, rate: float) -> tuple[bool, float]:
        """Take one token; return (allowed, tokens left afterwards)."""
        ...

    async def close(self) -> None: ...


def refill(tokens: float, elapsed: float, capacity: int, rate: float) -> float:
    return min(float(capacity), tokens + max(elapsed, 0.0) * rate)


class InProcessBuckets:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, key: str, capacity: int, rate: float) -> tuple[bool, float]:
        now = time.monotonic()
        tokens, updated = self._buckets.get(key, (float(capacity), now))
        tokens = refill(tokens, now - updated, capacity, rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        return allowed, tokens

    async def close(self) -> None:
        self._buckets.clear()


# KEYS[1] bucket hash; ARGV: capacity, rate per second, ttl ms. Uses the server's clock so that
# replicas with skewed clocks still agree.
TAKE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {allowed, tostring(tokens)}
"""


class RedisBuckets:
    def __init__(self, url: str, namespace: str = "gateway") -> None:
        # Deployments sharing one Redis keep apart by namespace (key ids repeat across databases).
        self._prefix = f"{namespace}:rl:"
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
        )
        self._take = self._redis.register_script(TAKE_SCRIPT)

    async def take(self, key: str, capacity: int, rate: float) -> tuple[bool, float]:
        ttl_ms = math.ceil(capacity / rate * 1000) + 1000
        allowed, tokens = await self._take(keys=[self._prefix + key], args=[capacity, rate, ttl_ms])
        return bool(allowed), float(tokens)

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(
        self,
        store: BucketStore,
        per_hour: int,
        burst: int,
        fail_closed: bool = False,
        on_store_error: object = None,
    ) -> None:
        self.store = store
        self.enabled = per_hour > 0
        self.capacity = burst
        self.rate = per_hour / 3600.0
        self.fail_closed = fail_closed
        self._on_store_error = on_store_error
        self.window_seconds = math.ceil(burst / self.rate) if self.enabled else 0

    async def check(self, key: str) -> RateLimitStatus | None:
        """Take a token for ``key``; raise RateLimited when none is left."""
        if not self.enabled:
            return None
        try:
            allowed, tokens = await self.store.take(key, self.capacity, self.rate)
        except (RedisError, OSError) as exc:
            if callable(self._on_store_error):
                self._on_store_error()
            if self.fail_closed:
                logger.error("rate limit store unreachable, refusing request: %s", exc)
                raise ServiceUnavailable("Rate limiting is unavailable. Please retry.") from exc
            logger.warning("rate limit store unreachable, allowing request: %s", exc)
            return None
        status = RateLimitStatus(
            limit=self.capacity,
            remaining=int(tokens),
            reset_seconds=math.ceil((self.capacity - tokens) / self.rate),
            retry_after=max(1, math.ceil((1.0 - tokens) / self.rate)) if not allowed else 0,
            window_seconds=self.window_seconds,
            allowed=allowed,
        )
        if not allowed:
            error = RateLimited(status.retry_after)
            error.headers.update(status.headers())
            raise error
        return status
