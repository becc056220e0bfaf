"""Retrieval metrics (retrieval/common/metrics.py): stage histograms and document counters in their own registry."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from retrieval.common.metrics import REGISTRY, count_documents, observe


def _value(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_observations_land_in_their_buckets_and_counters_add_up() -> None:
    labels = {"collection": "metrics-test", "stage": "search_dense"}
    count, total = _value("retrieval_stage_seconds_count", labels), _value("retrieval_stage_seconds_sum", labels)
    small = _value("retrieval_stage_seconds_bucket", {**labels, "le": "0.005"})
    observe("metrics-test", "search_dense", 0.004)
    observe("metrics-test", "search_dense", 0.2)
    assert _value("retrieval_stage_seconds_count", labels) == count + 2
    assert _value("retrieval_stage_seconds_sum", labels) - total == pytest.approx(0.204)
    assert _value("retrieval_stage_seconds_bucket", {**labels, "le": "0.005"}) == small + 1
    docs = _value("retrieval_documents_ingested_total", {"collection": "metrics-test"})
    count_documents("metrics-test", 3)
    assert _value("retrieval_documents_ingested_total", {"collection": "metrics-test"}) == docs + 3
    assert b'retrieval_documents_ingested_total{collection="metrics-test"}' in generate_latest(REGISTRY)
