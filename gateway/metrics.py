"""Prometheus metrics, one registry per application instance (tests build many apps)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gateway_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "gateway_http_request_duration_seconds",
            "HTTP request latency by route and status",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.graphql_operations = Counter(
            "gateway_graphql_operations",
            "GraphQL operations by name, type and error code",
            ["operation", "type", "error_code"],
            registry=r,
        )
        self.job_matches_created = Counter(
            "gateway_job_matches_created", "Job matches recorded", registry=r
        )
        self.candidates_per_job_match = Histogram(
            "gateway_job_match_candidates",
            "Candidates per recorded job match",
            buckets=(1, 2, 3, 5, 10, 20, 50, 100),
            registry=r,
        )
        self.idempotent_replays = Counter(
            "gateway_idempotent_replays", "Responses replayed for an Idempotency-Key", registry=r
        )
        self.rate_limited = Counter(
            "gateway_rate_limited", "Requests refused by the rate limit", registry=r
        )
        self.rate_limit_store_errors = Counter(
            "gateway_rate_limit_store_errors",
            "Rate-limit decisions made without the shared store (Redis unreachable)",
            registry=r,
        )
        self.db_pool_in_use = Gauge(
            "gateway_db_pool_in_use", "Database connections checked out", registry=r
        )

    def watch_pool(self, in_use: Callable[[], int]) -> None:
        self.db_pool_in_use.set_function(in_use)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
