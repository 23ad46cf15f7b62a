"""The core's object graph, built once per application from its settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from gateway.access import AccessGuard
from gateway.auth import Authenticator
from gateway.database import Database
from gateway.job_matches import JobMatchService
from gateway.metrics import Metrics
from gateway.rate_limit import BucketStore, InProcessBuckets, RateLimiter, RedisBuckets
from gateway.settings import Settings
from gateway.validation import Limits


@dataclass
class Services:
    settings: Settings
    database: Database
    metrics: Metrics
    buckets: BucketStore
    guard: AccessGuard
    job_matches: JobMatchService

    async def close(self) -> None:
        await self.buckets.close()
        await self.database.dispose()


def build_services(settings: Settings) -> Services:
    database = Database(settings.database_url, pool_size=settings.database_pool_size)
    metrics = Metrics()
    metrics.watch_pool(database.pool_in_use)
    buckets: BucketStore = (
        RedisBuckets(settings.redis_url, settings.redis_namespace)
        if settings.redis_url
        else InProcessBuckets()
    )
    rate_limiter = RateLimiter(
        buckets,
        per_hour=settings.rate_limit_per_hour,
        burst=settings.rate_limit_burst,
        fail_closed=settings.rate_limit_fail_closed,
        on_store_error=metrics.rate_limit_store_errors.inc,
    )
    authenticator = Authenticator(
        database,
        cache_seconds=settings.key_cache_seconds,
        last_used_interval=settings.key_last_used_interval_seconds,
    )
    job_matches = JobMatchService(
        database,
        Limits(settings.max_candidates, settings.max_notes_length),
        timedelta(hours=settings.idempotency_ttl_hours),
        metrics,
    )
    return Services(
        settings=settings,
        database=database,
        metrics=metrics,
        buckets=buckets,
        guard=AccessGuard(authenticator, rate_limiter),
        job_matches=job_matches,
    )
