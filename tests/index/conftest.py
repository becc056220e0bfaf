"""Seeded clustered data shared by the index tests (small sizes: the whole suite runs in seconds)."""

from __future__ import annotations

import numpy as np
import pytest
from index_test_helpers import DIM

from benchmarks.synthetic import clustered_dense, clustered_multivector, sparse_docs


@pytest.fixture(scope="session")
def dense_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids int64 (3000,), vectors float32 (3000, 32), queries float32 (40, 32))``."""
    x, q = clustered_dense(3000, DIM, 40, n_clusters=30, seed=1)
    return np.arange(3000, dtype=np.int64) * 5 + 11, x, q


@pytest.fixture(scope="session")
def mv_data() -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """``(ids (600,), documents float32 (8..40, 16) each, queries float32 (8, 16) each)``."""
    docs, queries = clustered_multivector(600, 16, 20, doc_len=(8, 40), query_len=8, seed=2)
    return np.arange(600, dtype=np.int64) * 3 + 1, docs, queries


@pytest.fixture(scope="session")
def sparse_data() -> tuple[np.ndarray, list[dict[int, float]], list[dict[int, float]]]:
    """``(ids (1500,), documents, queries)`` as ``{token_id: weight}`` dicts over a 2,000-token vocab."""
    docs, queries = sparse_docs(1500, 2000, 30, doc_terms=30, query_terms=6, seed=3)
    return np.arange(1500, dtype=np.int64) * 2 + 100, docs, queries
