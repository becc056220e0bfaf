"""The exact oracles (index/exact.py) checked themselves: hand-computed scores, naive loops, upserts, round trips."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from index.config import BM25Config
from index.exact import ExactBM25Index, ExactDenseIndex, ExactMultiVectorIndex, ExactSparseIndex


def test_dense_inner_product_and_cosine_by_hand() -> None:
    x = np.array([[1.0, 0.0], [3.0, 4.0], [0.0, -2.0]], np.float32)
    ip = ExactDenseIndex(2, "ip")
    ip.add([10, 11, 12], x)
    got = ip.search(np.array([[1.0, 1.0]], np.float32), 4)
    assert got.ids.tolist() == [[11, 10, 12, -1]] and got.scores[0, :3].tolist() == [7.0, 1.0, -2.0]
    cos = ExactDenseIndex(2, "cosine")
    cos.add([10, 11, 12], x)
    got = cos.search(np.array([[0.0, 5.0]], np.float32), 2, allowed_ids=[10, 12])
    assert got.ids.tolist() == [[10, 12]] and got.scores[0].tolist() == pytest.approx([0.0, -1.0])


def test_upsert_and_remove() -> None:
    index = ExactDenseIndex(1, "ip")
    index.add([1, 2], np.array([[1.0], [2.0]], np.float32))
    index.add([1], np.array([[5.0]], np.float32))  # replaces id 1
    index.remove([2, 99])
    got = index.search(np.array([[1.0]], np.float32), 3)
    assert len(index) == 1 and got.ids.tolist() == [[1, -1, -1]] and got.scores[0, 0] == 5.0
    assert ExactDenseIndex(1).search(np.ones((2, 1), np.float32), 2).ids.tolist() == [[-1, -1]] * 2


def test_multivector_is_maxsim_of_a_naive_loop() -> None:
    rng = np.random.default_rng(0)
    docs = [rng.standard_normal((m, 4)).astype(np.float32) for m in (1, 3, 5, 2)]
    queries = [rng.standard_normal((m, 4)).astype(np.float32) for m in (2, 3)]
    index = ExactMultiVectorIndex(4)
    index.add([0, 1, 2, 3], docs)
    got = index.search(queries, 4)
    for qi, q in enumerate(queries):
        naive = [sum(max(float(v @ t) for t in d) for v in q) for d in docs]
        order = sorted(range(4), key=lambda i: -naive[i])
        assert got.ids[qi].tolist() == order
        assert got.scores[qi].tolist() == pytest.approx([naive[i] for i in order], abs=1e-5)


def test_sparse_dot_products_and_only_positive_hits() -> None:
    index = ExactSparseIndex()
    index.add([5, 6, 7], [{1: 1.0, 2: 2.0}, {2: 0.5}, {9: 3.0}])
    got = index.search([{2: 2.0, 1: 1.0}, {50: 1.0}], 3)
    assert got.ids.tolist() == [[5, 6, -1], [-1, -1, -1]] and got.scores[0, :2].tolist() == [5.0, 1.0]


def test_bm25_by_the_lucene_formula() -> None:
    config = BM25Config(k1=1.2, b=0.75, stopwords=None)
    index = ExactBM25Index(config)
    index.add([1, 2, 3], ["apple banana apple", "banana", "cherry date elderberry fig"])
    got = index.search(["apple"], 3)
    n, df, avg = 3, 1, (3 + 1 + 4) / 3
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    want = idf * 2 / (1.2 * (0.25 + 0.75 * 3 / avg) + 2)
    assert got.ids.tolist() == [[1, -1, -1]] and got.scores[0, 0] == pytest.approx(want, rel=1e-6)
    filtered = index.search(["banana"], 3, allowed_ids=[1])
    assert filtered.ids.tolist() == [[1, -1, -1]]  # statistics over all documents, filter after


def test_every_oracle_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    dense = ExactDenseIndex(3, "cosine")
    dense.add([4, 8], rng.standard_normal((2, 3)).astype(np.float32))
    multi = ExactMultiVectorIndex(3)
    multi.add([4, 8], [rng.standard_normal((m, 3)).astype(np.float32) for m in (2, 4)])
    sparse = ExactSparseIndex()
    sparse.add([4, 8], [{1: 0.5}, {1: 0.25, 3: 1.0}])
    bm25 = ExactBM25Index(BM25Config(stemmer="english"))
    bm25.add([4, 8], ["running fast", "runs slowly"])
    cases = [
        (dense, rng.standard_normal((1, 3)).astype(np.float32)),
        (multi, [rng.standard_normal((2, 3)).astype(np.float32)]),
        (sparse, [{1: 1.0, 3: 1.0}]),
        (bm25, ["run"]),
    ]
    for index, query in cases:
        index.remove([8])
        index.save(tmp_path / index.family, seq=7)
        loaded = type(index).load(tmp_path / index.family)
        assert loaded.seq == 7 and len(loaded) == 1
        before, after = index.search(query, 2), loaded.search(query, 2)
        assert before.ids.tolist() == after.ids.tolist() == [[4, -1]]
        assert before.scores.tolist() == after.scores.tolist()
