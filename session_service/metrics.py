"""Prometheus metrics, one registry per app (no process-global state).

Labels are bounded: the route *template* (`/sessions/{session_id}`), never the concrete path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from .core import CoreRequest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class PoolCollector:
    """Pool size and connections in use per `db_id`, read from the pools at scrape time."""

    def __init__(self, pools: Callable[[], dict[str, object]]):
        self._pools = pools

    def collect(self) -> Iterable[Metric]:
        size = GaugeMetricFamily("agno_session_db_pool_size", "Connections open in the pool", labels=["db_id"])
        in_use = GaugeMetricFamily(
            "agno_session_db_pool_in_use", "Connections checked out of the pool", labels=["db_id"]
        )
        for db_id, pool in self._pools().items():
            total = pool.get_size()  # type: ignore[attr-defined]
            size.add_metric([db_id], total)
            in_use.add_metric([db_id], total - pool.get_idle_size())  # type: ignore[attr-defined]
        yield size
        yield in_use


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "agno_session_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "agno_session_request_duration_seconds",
            "Time to answer a request",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.query_latency = Histogram(
            "agno_session_db_query_duration_seconds",
            "Time of one SQL statement",
            ["db_id"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Readiness, refreshed by the background check and by each /readyz (session_service.health).
        self.db_up = Gauge(
            "agno_session_db_up",
            "1 when the database answered SELECT 1 at the last check, else 0",
            ["db_id"],
            registry=self.registry,
        )
        # The configured ceiling, so an alert can compare in_use with it (pool saturation).
        self.pool_max = Gauge(
            "agno_session_db_pool_max",
            "Configured maximum connections of the pool (AGNO_POOL_MAX_SIZE)",
            ["db_id"],
            registry=self.registry,
        )

        # The labelled children, looked up once per (method, route[, status]): prometheus_client's
        # `labels()` validates and joins the labels under a lock on every call.
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    def observe_request(self, method: str, route: str, status: int, elapsed_s: float) -> None:
        """One answered request: `agno_session_requests_total` and its duration."""
        counted = self._counted.get((method, route, status))
        if counted is None:
            counted = self._counted[(method, route, status)] = self.requests.labels(method, route, str(status))
        counted.inc()
        timed = self._timed.get((method, route))
        if timed is None:
            timed = self._timed[(method, route)] = self.latency.labels(method, route)
        timed.observe(elapsed_s)

    def watch_pools(self, pools: Callable[[], dict[str, object]]) -> None:
        self.registry.register(PoolCollector(pools))


async def metrics_view(request: CoreRequest) -> web.Response:
    """`GET /metrics`: the app's own registry, in Prometheus's text format."""
    from .appkeys import METRICS  # appkeys names ServiceMetrics

    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
