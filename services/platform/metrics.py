"""Prometheus metrics for one app instance: GraphQL operations by name and outcome, HTTP requests, the DB pool.

Each app has a registry of its own (several apps live in one test process); `/metrics` renders it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PoolCollector(Collector):
    """The database pool at scrape time: its size, connections in use, and overflow."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool: Any = self.engine.sync_engine.pool
        for name, method, help_text in (
            ("size", "size", "Connections the pool keeps"),
            ("checked_out", "checkedout", "Connections in use now"),
            ("overflow", "overflow", "Connections beyond the pool size"),
        ):
            family = GaugeMetricFamily(f"chain_db_pool_{name}", help_text)
            reader = getattr(pool, method, None)
            family.add_metric([], float(reader()) if callable(reader) else 0.0)
            yield family


class Metrics:
    def __init__(self, engine: AsyncEngine | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.operations = Counter(
            "chain_graphql_operations_total",
            "GraphQL operations",
            ["operation", "type", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "chain_graphql_operation_seconds",
            "GraphQL operation latency",
            ["operation", "type"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.http = Counter(
            "chain_http_requests_total", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.public_reads = Counter(
            "chain_public_reads_total",
            "Public documents answered from the instance's memory (hit) or made by GraphQL (made)",
            ["document", "source"],
            registry=self.registry,
        )
        self.jobs_failed = Gauge(
            "chain_jobs_failed",
            "Jobs that gave up after their retries (FAILED), by kind",
            ["kind"],
            registry=self.registry,
        )
        if engine is not None:
            self.registry.register(PoolCollector(engine))

    def set_failed_jobs(self, counts: dict[str, int]) -> None:
        """The job runner's count after each pass (every known kind, 0 when none): alert on chain_jobs_failed > 0."""
        for kind, count in counts.items():
            self.jobs_failed.labels(kind).set(count)

    def observe_operation(self, name: str, kind: str, outcome: str, seconds: float) -> None:
        self.operations.labels(name, kind, outcome).inc()
        self.latency.labels(name, kind).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
