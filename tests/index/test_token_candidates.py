"""Candidate stage of two-stage MaxSim (index/token_candidates.py): the imputed estimate by hand, build and remove."""

from __future__ import annotations

import numpy as np

from index.config import MultiVectorConfig
from index.token_candidates import TokenCandidates, _best_docs
from index.token_store import TokenStore


def test_missing_similarities_are_imputed_with_the_rows_lowest_score() -> None:
    # two query vectors, token_k = 3; doc 7 seen by both, doc 8 only by the first, doc 9 only by the second
    scores = np.array([[0.9, 0.5, 0.4], [0.8, 0.3, 0.2]], np.float32)
    labels = np.array([[7, 8, 7], [9, 7, -1]], np.int64)
    # estimates: 7 = 0.9 + 0.3; 8 = 0.5 + 0.2 (floor of row 1); 9 = 0.4 (floor of row 0) + 0.8
    assert sorted(_best_docs(scores, labels, 2).tolist()) == [7, 9]
    assert sorted(_best_docs(scores, labels, 5).tolist()) == [7, 8, 9]
    assert _best_docs(scores, np.full((2, 3), -1, np.int64), 2).tolist() == []


def test_each_document_is_a_candidate_for_its_own_tokens_until_removed() -> None:
    rng = np.random.default_rng(0)
    docs = [rng.standard_normal((10, 8)).astype(np.float32) for _ in range(20)]
    docs = [d / np.linalg.norm(d, axis=1, keepdims=True) for d in docs]
    store = TokenStore(8)
    store.append(docs)
    slots = np.arange(20, dtype=np.int64)
    cands = TokenCandidates.build(MultiVectorConfig(nprobe=64, pq_m=8), store, slots)
    assert cands.index.ntotal == 200 and cands.trained_on == 200 and cands.nbytes() > 200 * 8
    found = cands.candidates([docs[3], docs[17]], token_k=8, n_docs=5)
    assert 3 in found[0].tolist() and 17 in found[1].tolist() and all(f.size <= 5 for f in found)
    cands.remove(np.array([3], np.int64))
    assert cands.index.ntotal == 190
    assert 3 not in cands.candidates([docs[3]], token_k=8, n_docs=20)[0].tolist()


def test_search_depth_grows_with_the_lists(mv_data, monkeypatch) -> None:
    """Longer lists hold more near-ties: a search fetches at least half a list per query vector and reranks one
    document per 10 hits, whatever smaller figures the config names."""
    from index import MultiVectorIndex

    ids, docs, queries = mv_data
    index = MultiVectorIndex(16, MultiVectorConfig(kind="compressed", nlist=4, nprobe=4, token_k=8, rerank=10))
    index.add(ids, docs)
    seen: list[tuple[int, int]] = []
    real = TokenCandidates.candidates

    def spy(self, qs, token_k, n_docs, *rest):  # type: ignore[no-untyped-def]
        seen.append((token_k, n_docs))
        return real(self, qs, token_k, n_docs, *rest)

    monkeypatch.setattr(TokenCandidates, "candidates", spy)
    index.search(queries[:1], 10)
    per_list = sum(d.shape[0] for d in docs) // 4
    assert seen == [(per_list // 2, per_list // 2 // 10)]
