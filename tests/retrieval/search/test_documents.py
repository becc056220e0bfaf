"""Ranking documents from chunk lists (retrieval/search/documents.py) against naive references written here:
each list's documents by their best chunk, fused by hand (RRF, min-max), reranked by hand, scored by hand."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.evaluation.figures import document_figures
from retrieval.evaluation.measures import mrr_at_k, ndcg_at_k, recall_at_k
from retrieval.search.documents import (
    list_depth,
    prefix_of,
    rank_documents,
    rerank_chunks,
    rerank_documents,
)
from retrieval.search.fusion import FusionConfig, RankedList
from tests.retrieval.search._naive import naive_docs, naive_minmax, naive_rrf


def _random_case(seed: int, n_docs: int = 30) -> tuple[dict[str, RankedList], dict[int, str]]:
    """Two lists over the chunks of `n_docs` documents of 1..5 chunks, scores without ties."""
    rng = np.random.default_rng(seed)
    doc_of: dict[int, str] = {}
    cid = 0
    for d in range(n_docs):
        for _ in range(int(rng.integers(1, 6))):
            doc_of[cid] = f"doc{d:02d}"
            cid += 1
    lists = {}
    for name in ("dense", "bm25"):
        ids = rng.permutation(cid)[: int(cid * 0.8)].astype(np.int64)
        lists[name] = RankedList(ids, np.sort(rng.random(ids.size).astype(np.float32))[::-1].copy())
    return lists, doc_of


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("c", [1, 3, 10, 100])
def test_one_list_ranks_documents_by_their_best_chunk(seed: int, c: int) -> None:
    lists, doc_of = _random_case(seed)
    ranking = rank_documents({"dense": lists["dense"]}, doc_of, FusionConfig(), c)
    want = naive_docs(lists["dense"], doc_of, c)
    assert ranking.docs == [d for d, _ in want] and len(set(ranking.docs)) == len(ranking.docs)
    assert ranking.scores == pytest.approx([s for _, s in want]) and ranking.stage == "dense"
    assert ranking.lists["dense"] == pytest.approx(dict(want))
    for d in ranking.docs:  # a document's chunks: its candidates in the list's order
        mine = [i for i in prefix_of(lists["dense"], doc_of, c).ids.tolist() if doc_of[i] == d]
        assert ranking.chunks[d] == mine


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("c", [2, 10, 40])
def test_fusion_runs_over_documents(seed: int, c: int) -> None:
    lists, doc_of = _random_case(seed)
    per_list = [naive_docs(lists[n], doc_of, c) for n in ("dense", "bm25")]
    for k in (60, 2):
        ranking = rank_documents(lists, doc_of, FusionConfig("rrf", k), c)
        assert ranking.docs == naive_rrf(per_list, k) and ranking.stage == "fusion"
        assert ranking.fused == pytest.approx(dict(zip(ranking.docs, ranking.scores, strict=True)))
    assert rank_documents(lists, doc_of, FusionConfig("weighted"), c).docs == naive_minmax(per_list)


def test_equal_fused_scores_go_to_the_smaller_document_id() -> None:
    doc_of = {1: "zeta", 2: "alpha", 3: "mid"}
    a = RankedList(np.array([1, 2], np.int64), np.array([0.9, 0.8], np.float32))
    b = RankedList(np.array([2, 1], np.int64), np.array([0.9, 0.8], np.float32))
    assert rank_documents({"dense": a, "bm25": b}, doc_of, FusionConfig(), 10).docs == ["alpha", "zeta"]


def test_a_prefix_ends_at_the_first_chunk_of_the_cth_document_and_a_longer_fetch_keeps_it() -> None:
    lists, doc_of = _random_case(9)
    full = lists["dense"]
    for c in (1, 4, 12):
        cut = prefix_of(full, doc_of, c)
        docs = list(dict.fromkeys(doc_of[i] for i in cut.ids.tolist()))
        assert len(docs) == c and doc_of[int(cut.ids[-1])] == docs[-1]
        assert docs[-1] not in {doc_of[i] for i in cut.ids[:-1].tolist()}  # the c-th document's first chunk ends it
        longer = RankedList(full.ids[: cut.ids.size + 7], full.scores[: cut.ids.size + 7])
        assert prefix_of(longer, doc_of, c).ids.tolist() == cut.ids.tolist()


def test_rerank_scores_the_best_chunks_of_the_top_documents_and_takes_each_ones_best() -> None:
    lists, doc_of = _random_case(3)
    ranking = rank_documents(lists, doc_of, FusionConfig(), 20)
    top_n, group_size = 5, 2
    chunks = rerank_chunks(ranking, top_n, group_size)
    assert chunks == [c for d in ranking.docs[:top_n] for c in ranking.chunks[d][:group_size]]
    rng = np.random.default_rng(0)
    scored = {c: float(rng.random()) for c in chunks}
    after = rerank_documents(ranking, scored, top_n)
    best = {d: max(scored[c] for c in ranking.chunks[d][:group_size]) for d in ranking.docs[:top_n]}
    assert after.docs[:top_n] == sorted(best, key=lambda d: -best[d])
    assert after.docs[top_n:] == ranking.docs[top_n:] and after.scores[top_n:] == ranking.scores[top_n:]
    assert after.scores[:top_n] == [best[d] for d in after.docs[:top_n]] and after.reranked == best
    for d in after.docs[:top_n]:
        mine = [c for c in ranking.chunks[d] if c in scored]
        assert after.chunks[d][: len(mine)] == sorted(mine, key=lambda c: -scored[c])
        assert after.chunk_scores["rerank"][after.chunks[d][0]] == best[d]


def test_document_figures_are_the_metrics_of_a_top_10_and_a_top_100_search() -> None:
    lists, doc_of = _random_case(4, n_docs=150)
    queries = [("q1", lists, doc_of), ("q2", {"dense": lists["bm25"], "bm25": lists["dense"]}, doc_of)]
    qrels = {"q1": {"doc07": 2, "doc88": 1, "nowhere": 1}, "q2": {"doc140": 1}}
    fusion = FusionConfig("rrf", 10)
    row = document_figures("hybrid", "rrf k=10", queries, fusion, 30, qrels)
    top10 = {q: rank_documents(ls, d, fusion, list_depth(30, 10)).docs[:10] for q, ls, d in queries}
    top100 = {q: rank_documents(ls, d, fusion, list_depth(30, 100)).docs[:100] for q, ls, d in queries}
    assert len(top100["q1"]) == 100
    assert row.ndcg_at_10 == ndcg_at_k(top10, qrels) and row.mrr_at_10 == mrr_at_k(top10, qrels)
    assert row.recall_at_100 == recall_at_k(top100, qrels, 100) and (row.mode, row.fusion) == ("hybrid", "rrf k=10")
