"""Prometheus metrics: request counts and latencies, plus each model's batcher counters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from litestar import Request, get
from litestar.response import Response
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from api.lifecycle import Lifecycle
from retrieval import ModelRegistry
from retrieval.common import metrics as retrieval_metrics

__all__ = ["Metrics", "metrics_endpoint"]


class _BatcherCollector(Collector):
    def __init__(self, owner: Metrics) -> None:
        self._owner = owner

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        queued = GaugeMetricFamily("retrieval_queue_sequences", "sequences waiting to run", labels=["model"])
        padding = GaugeMetricFamily(
            "retrieval_padding_ratio", "fraction of the tokens run that were padding, since start", labels=["model"]
        )
        counters = {
            name: CounterMetricFamily(f"retrieval_{name}", help_, labels=["model"])
            for name, help_ in (
                ("windows", "times the batcher took queued work"),
                ("batches", "forward passes run"),
                ("sequences", "sequences encoded"),
                ("tokens", "real tokens encoded"),
                ("padded_tokens", "tokens encoded including padding"),
                ("rejected_sequences", "sequences refused because the queue was full"),
                ("cancelled_sequences", "sequences skipped after their client left"),
            )
        }
        for engine in self._owner.models or ():
            stats = engine.stats
            queued.add_metric([engine.name], stats.queued)
            padding.add_metric([engine.name], stats.padding_ratio)
            for name, value in (
                ("windows", stats.windows),
                ("batches", stats.batches),
                ("sequences", stats.sequences),
                ("tokens", stats.tokens),
                ("padded_tokens", stats.padded_tokens),
                ("rejected_sequences", stats.rejected),
                ("cancelled_sequences", stats.cancelled),
            ):
                counters[name].add_metric([engine.name], value)
        yield queued
        yield padding
        yield from counters.values()
        yield from _admission(self._owner.lifecycle)


def _admission(lifecycle: Lifecycle | None) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """In-flight requests and searches, and the searches refused with 429 by the admission middleware."""
    if lifecycle is None:
        return
    yield GaugeMetricFamily("retrieval_inflight_requests", "admitted requests not yet answered", lifecycle.inflight)
    yield GaugeMetricFamily("retrieval_inflight_searches", "searches running", lifecycle.inflight_search)
    yield CounterMetricFamily("retrieval_admission_rejected", "searches refused (429) at admission", lifecycle.rejected)


class Metrics:
    """One Prometheus registry per app (so several apps in one process do not collide)."""

    def __init__(self) -> None:
        self.models: ModelRegistry | None = None  # set once the models are loaded
        self.lifecycle: Lifecycle | None = None  # admission state (in-flight requests, 429s)
        self.registry = CollectorRegistry()
        self.requests = Counter("retrieval_http_requests", "HTTP requests", ["path", "status"], registry=self.registry)
        self.latency = Histogram(
            "retrieval_http_request_seconds", "HTTP request latency", ["path"], registry=self.registry
        )
        self.registry.register(_BatcherCollector(self))

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start, status = time.perf_counter(), [500]

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                handler = scope.get("route_handler")
                route = next(iter(handler.paths), "unmatched") if handler is not None else "unmatched"
                self.requests.labels(route, str(status[0])).inc()
                self.latency.labels(route).observe(time.perf_counter() - start)

        return wrapped


@get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response[bytes]:
    metrics: Metrics = request.app.state.metrics
    service = getattr(request.app.state, "service", None)
    if service is not None and service.sharded_names():
        await asyncio.to_thread(service.refresh_shard_metrics)  # each shard's state and sizes, now
    body = generate_latest(metrics.registry) + generate_latest(retrieval_metrics.REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
