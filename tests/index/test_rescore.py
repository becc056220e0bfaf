"""float16 MaxSim of the compressed kind's rerank (index/rescore.py) against a naive loop, and its use by search."""

from __future__ import annotations

import numpy as np
import pytest

import index.multivector as multivector
from index import MultiVectorConfig, MultiVectorIndex
from index.rescore import maxsim_float16


def _naive(q: np.ndarray, docs: list[np.ndarray]) -> np.ndarray:
    return np.array([float((q @ d.astype(np.float32).T).max(axis=1).sum()) for d in docs], np.float32)


@pytest.mark.parametrize("block_rows", [4096, 64])
def test_matches_a_naive_loop_across_chunks(block_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    docs = [rng.standard_normal((int(n), 24)).astype(np.float16) for n in rng.integers(1, 60, 200)]
    offsets = np.concatenate([[0], np.cumsum([d.shape[0] for d in docs])]).astype(np.int64)
    queries = [rng.standard_normal((n, 24)).astype(np.float32) for n in (5, 9)]
    padded, mask = multivector.pad_queries(queries)
    monkeypatch.setattr("index.rescore._CHUNK_TOKENS", 500)  # several segmented maxes, documents never split
    monkeypatch.setattr("index.rescore._BLOCK_ROWS", block_rows)  # fixed-shape GEMMs, the last one zero-padded
    got = maxsim_float16(padded, mask, np.concatenate(docs), offsets)
    want = np.stack([_naive(q, docs) for q in queries])
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-2)  # float16 products, float32 accumulation


def test_a_compressed_search_reranks_with_it(mv_data, monkeypatch: pytest.MonkeyPatch) -> None:
    ids, docs, queries = mv_data
    index = MultiVectorIndex(16, MultiVectorConfig(kind="compressed", nprobe=8))
    index.add(ids, docs)
    calls: list[int] = []

    def spy(*args: object) -> np.ndarray:
        calls.append(args[2].shape[0])  # type: ignore[attr-defined]
        return maxsim_float16(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(multivector, "maxsim_float16", spy)
    found = index.search(queries[:3], 5)
    assert len(calls) == 3 and (found.ids >= 0).all()
    by_id = dict(zip(ids.tolist(), docs, strict=True))
    for q, row, scores in zip(queries[:3], found.ids, found.scores, strict=True):
        np.testing.assert_allclose(scores, _naive(q, [by_id[i].astype(np.float16) for i in row]), rtol=2e-3)


@pytest.mark.parametrize("name", ["index.rescore", "index.threads", "index.token_candidates"])
def test_doctests(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
