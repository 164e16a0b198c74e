"""Prometheus metrics at `/metrics`: requests and latency per endpoint, memories per tenant.

Requests are labelled by route template (`/v1/memories/{id}`), never by raw path, so ids do not
multiply the series. Memory counts are read from the store at scrape time, per tenant.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engramdb.server.tenancy import Tenants

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsMiddleware"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series double the scrape
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _TenantMemories(Collector):
    """`engramdb_memories{tenant,kind,status}`, counted when scraped."""

    def __init__(self, tenants: Tenants) -> None:
        self.tenants = tenants

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "engramdb_memories", "Memories stored, per tenant, kind and status.",
            labels=["tenant", "kind", "status"],
        )  # fmt: skip
        for tenant in self.tenants.known():
            stats = self.tenants.memory(tenant).stats()
            for kind, by_status in sorted(stats.memories.items()):
                for status, count in sorted(by_status.items()):
                    family.add_metric([tenant, kind, status], count)
        yield family


class Metrics:
    """The server's metrics, in a registry of its own (one per app)."""

    def __init__(self, tenants: Tenants) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "engramdb_http_requests", "HTTP requests answered, per route and status.",
            ["method", "route", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "engramdb_http_request_duration_seconds", "Time to answer an HTTP request.",
            ["method", "route"], buckets=_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(_TenantMemories(tenants))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    raw = str(scope.get("path", ""))
    for prefix in ("/mcp", "/ui"):
        if raw == prefix or raw.startswith(prefix + "/"):
            return prefix
    return "unmatched"


class MetricsMiddleware:
    """ASGI middleware that times every HTTP request into `Metrics`."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe(
                str(scope.get("method", "")), _route_label(scope), status,
                time.perf_counter() - start,
            )  # fmt: skip
