"""Prometheus metrics (spec http-api §11), one registry per application."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    """The series the spec names. Labels never hold ids, credentials or personal data."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "hellotext_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "hellotext_http_request_duration_seconds",
            "Time to answer HTTP requests",
            ["method", "route"],
            registry=self.registry,
        )
        self.events_stored = Counter(
            "hellotext_events_stored", "Events committed", ["via"], registry=self.registry
        )
        self.identifications = Counter(
            "hellotext_identifications",
            "Public identifications by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.sessions_attached = Counter(
            "hellotext_sessions_attached", "Sessions attached to a profile", ["via"], registry=self.registry
        )
        self._stored: dict[str, Any] = {}
        self.link_clicks = Counter(
            "hellotext_link_clicks", "Short-link requests", ["kind"], registry=self.registry
        )

    def stored(self, via: str) -> Any:
        """The `events_stored` child for `via`, kept: ingest counts on every request."""
        child = self._stored.get(via)
        if child is None:
            child = self._stored[via] = self.events_stored.labels(via)
        return child

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._cache: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
            counter, histogram = self._children(method, template, status)
            counter.inc()
            histogram.observe(time.perf_counter() - start)

    def _children(self, method: str, template: str, status: int) -> tuple[Any, Any]:
        # `labels()` takes a lock and builds a tuple key on every call; the label sets are few (routes x
        # methods x statuses), so their children are looked up once and kept.
        key = (method, template, status)
        children = self._cache.get(key)
        if children is None:
            children = (
                self.metrics.requests.labels(method, template, str(status)),
                self.metrics.duration.labels(method, template),
            )
            self._cache[key] = children
        return children
