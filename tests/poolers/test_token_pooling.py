"""Token pooling against scipy's hierarchical clustering called directly, and its invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.cluster import hierarchy

from poolers.token_pooling import pool_tokens, pooled_length


def _unit(rng: np.random.Generator, m: int, d: int) -> np.ndarray:
    x = rng.standard_normal((m, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _reference(x: np.ndarray, pool_factor: int) -> np.ndarray:
    """Naive: square cosine distances by hand, Ward linkage, one mean per cluster in a Python loop."""
    xn = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    square = np.clip(1.0 - xn @ xn.T, 0.0, None)
    np.fill_diagonal(square, 0.0)
    iu = np.triu_indices(x.shape[0], 1)
    tree = hierarchy.ward(square[iu])
    labels = hierarchy.fcluster(tree, t=math.ceil(x.shape[0] / pool_factor), criterion="maxclust")
    rows = []
    for c in range(1, labels.max() + 1):
        mean = x[labels == c].astype(np.float64).mean(axis=0)
        rows.append(mean / np.linalg.norm(mean))
    return np.array(rows)


@pytest.mark.parametrize(("m", "pool_factor"), [(30, 2), (31, 3), (64, 4), (2, 2)])
def test_matches_scipy_reference(m: int, pool_factor: int) -> None:
    x = _unit(np.random.default_rng(m), m, 12)
    got = pool_tokens(x, pool_factor)
    np.testing.assert_allclose(got, _reference(x, pool_factor), atol=1e-5)
    assert got.shape == (pooled_length(m, pool_factor), 12) and got.dtype == np.float32


def test_pool_factor_one_is_identity() -> None:
    x = _unit(np.random.default_rng(0), 17, 8)
    np.testing.assert_array_equal(pool_tokens(x, 1), x)
    np.testing.assert_array_equal(pool_tokens(x[:1], 3), x[:1])


def test_duplicate_vectors_merge_first() -> None:
    base = _unit(np.random.default_rng(3), 4, 6)
    x = np.repeat(base, 2, axis=0)  # every vector twice: pooling by 2 recovers the four originals
    got = pool_tokens(x, 2)
    assert got.shape == (4, 6)
    assert np.abs(got @ base.T).max(axis=1).min() > 1 - 1e-5


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 40), pool_factor=st.integers(1, 5), seed=st.integers(0, 10**6))
def test_rows_unit_norm_and_count(m: int, pool_factor: int, seed: int) -> None:
    got = pool_tokens(_unit(np.random.default_rng(seed), m, 5), pool_factor)
    assert 1 <= got.shape[0] <= pooled_length(m, pool_factor)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
