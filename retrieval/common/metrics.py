"""Retrieval counters and latency histograms per collection and stage, in their own Prometheus registry
(`/metrics` serves it next to the HTTP and batching metrics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["REGISTRY", "count_documents", "count_open", "observe", "set_shards"]

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


_SHARD_UP = Gauge(
    "retrieval_shard_up",
    "1 when the shard of a sharded collection answered the last look, else 0",
    ["collection", "shard", "host"],
    registry=REGISTRY,
)
_SHARD_DOCUMENTS = Gauge(
    "retrieval_shard_documents",
    "Live documents per shard of a sharded collection (at the last look)",
    ["collection", "shard", "host"],
    registry=REGISTRY,
)
_SHARD_BYTES = Gauge(
    "retrieval_shard_bytes",
    "Stored bytes per shard of a sharded collection (at the last look)",
    ["collection", "shard", "host"],
    registry=REGISTRY,
)


def set_shards(collection: str, shards: Sequence[Any]) -> None:
    """Record each shard's state and sizes (`retrieval.sharding.collection.ShardStatus` rows)."""
    for s in shards:
        labels = (collection, str(s.shard), s.host)
        _SHARD_UP.labels(*labels).set(1 if s.state == "alive" else 0)
        if s.state == "alive":
            _SHARD_DOCUMENTS.labels(*labels).set(s.documents)
            _SHARD_BYTES.labels(*labels).set(s.bytes)


def observe(collection: str, stage: str, seconds: float) -> None:
    """Record one stage's duration."""
    _STAGE_SECONDS.labels(collection, stage).observe(seconds)


def count_documents(collection: str, n: int) -> None:
    _DOCUMENTS.labels(collection).inc(n)


def count_open(collection: str, how: str) -> None:
    """One collection came up at start (`how`: snapshot | rebuild)."""
    _OPENS.labels(collection, how).inc()
