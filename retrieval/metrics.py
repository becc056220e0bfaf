"""Retrieval counters and latency histograms per collection and stage, in their own Prometheus registry
(`/metrics` serves it next to the HTTP and batching metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["REGISTRY", "count_documents", "count_open", "observe"]

REGISTRY = CollectorRegistry(auto_describe=True)
_STAGE_SECONDS = Histogram(
    "retrieval_stage_seconds",
    "Seconds spent per collection and stage (ingest_encode, ingest_write, search_<mode>, ...)",
    ["collection", "stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
_DOCUMENTS = Counter(
    "retrieval_documents_ingested",
    "Documents written (new or replaced) per collection",
    ["collection"],
    registry=REGISTRY,
)


_OPENS = Counter(
    "retrieval_index_opens",
    "Collections brought up at start, by how: `snapshot` (loaded + replayed) or `rebuild` (from the store)",
    ["collection", "how"],
    registry=REGISTRY,
)


def observe(collection: str, stage: str, seconds: float) -> None:
    """Record one stage's duration."""
    _STAGE_SECONDS.labels(collection, stage).observe(seconds)


def count_documents(collection: str, n: int) -> None:
    _DOCUMENTS.labels(collection).inc(n)


def count_open(collection: str, how: str) -> None:
    """One collection came up at start (`how`: snapshot | rebuild)."""
    _OPENS.labels(collection, how).inc()
