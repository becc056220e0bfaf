"""Compact multi-vector storage: pooled stores, binary first stage, bf16 scans, persistence, byte estimates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from index_test_helpers import recall

from benchmarks.synthetic import clustered_multivector
from index import MultiVectorConfig, MultiVectorIndex
from index.storage import expected_bytes_per_doc
from poolers.token_pooling import pool_tokens

DIM = 16
BINARY = MultiVectorConfig(kind="two_stage", first_stage="binary", nprobe=8)


def _index(config: MultiVectorConfig, ids: np.ndarray, docs: list[np.ndarray]) -> MultiVectorIndex:
    index = MultiVectorIndex(DIM, config)
    index.add(ids, docs)
    return index


def _exact_ids(ids: np.ndarray, docs: list[np.ndarray], queries: list[np.ndarray], k: int) -> np.ndarray:
    scores = np.array([[float((q @ d.T).max(axis=1).sum()) for d in docs] for q in queries])
    return ids[np.argsort(-scores, axis=1, kind="stable")[:, :k]]


@pytest.fixture(scope="module")
def wide() -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], MultiVectorIndex]:
    """64-dim clustered data (sign codes need real widths: 16 bits per token say too little) and its index."""
    docs, queries = clustered_multivector(600, 64, 20, doc_len=(8, 40), query_len=8, seed=6)
    ids = np.arange(600, dtype=np.int64) * 2
    index = MultiVectorIndex(64, BINARY)
    index.add(ids, docs)
    return ids, docs, queries, index


def test_binary_first_stage_recall_vs_exact(wide) -> None:
    ids, docs, queries, index = wide
    assert index.two_stage and index.memory_bytes()["candidates"] > 0
    assert recall(index.search(queries, 10).ids, _exact_ids(ids, docs, queries, 10)) >= 0.95


def test_binary_first_stage_filter(wide) -> None:
    ids, docs, queries, index = wide
    allowed = ids[::3]
    found = index.search(queries, 10, allowed_ids=allowed).ids
    assert np.isin(found, allowed).all() and (found >= 0).all()
    mask = np.isin(ids, allowed)
    sub = [d for d, ok in zip(docs, mask, strict=True) if ok]
    assert recall(found, _exact_ids(ids[mask], sub, queries, 10)) >= 0.95


def test_pooled_index_scores_the_pooled_vectors(mv_data) -> None:
    ids, docs, queries = mv_data
    index = _index(MultiVectorConfig(kind="exact", pool_factor=2, dtype="float32"), ids[:100], docs[:100])
    pooled = [pool_tokens(d, 2) for d in docs[:100]]
    found = index.search(queries, 5).ids
    np.testing.assert_array_equal(found, _exact_ids(ids[:100], pooled, queries, 5))
    stored = sum(p.shape[0] for p in pooled)
    assert index.memory_bytes()["store"] == stored * DIM * 2 + 100 * 16


def test_bfloat16_scan_close_to_float32(mv_data) -> None:
    ids, docs, queries = mv_data
    f32 = _index(MultiVectorConfig(kind="exact", dtype="float32"), ids, docs)
    bf16 = _index(MultiVectorConfig(kind="exact", dtype="bfloat16"), ids[:300], docs[:300])
    bf16.add(ids[300:], docs[300:])  # the working copy built by the first scan grows with the store
    s32, i32 = f32.search(queries, 10)
    s16, i16 = bf16.search(queries, 10)
    assert recall(i16, i32) >= 0.9
    np.testing.assert_allclose(s16[:, 0], s32[:, 0], rtol=1e-2)
    assert bf16.memory_bytes()["working"] == bf16.memory_bytes()["store"] - len(ids) * 16


@pytest.mark.parametrize(
    "config",
    [BINARY, MultiVectorConfig(kind="two_stage", pool_factor=3), MultiVectorConfig(kind="exact", pool_factor=2)],
)
def test_save_load_round_trip(config: MultiVectorConfig, mv_data, tmp_path: Path) -> None:
    ids, docs, queries = mv_data
    index = _index(config, ids, docs)
    index.remove(ids[:10])
    index.save(tmp_path, seq=7)
    back = MultiVectorIndex.load(tmp_path)
    assert back.config == config and back.seq == 7 and len(back) == len(ids) - 10
    assert back.memory_bytes()["candidates"] == index.memory_bytes()["candidates"]
    a, b = index.search(queries, 10), back.search(queries, 10)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


@pytest.mark.parametrize(
    "config",
    [
        MultiVectorConfig(kind="exact"),
        MultiVectorConfig(kind="exact", pool_factor=3),
        MultiVectorConfig(kind="two_stage", pool_factor=2),
        MultiVectorConfig(kind="two_stage", first_stage="binary"),
    ],
)
def test_expected_bytes_equal_actual(config: MultiVectorConfig) -> None:
    rng = np.random.default_rng(4)
    docs = [rng.standard_normal((24, DIM)).astype(np.float32) for _ in range(200)]
    index = _index(config, np.arange(200), docs)
    assert index.bytes_per_doc() == expected_bytes_per_doc(config, DIM, 24, two_stage=config.kind == "two_stage")
