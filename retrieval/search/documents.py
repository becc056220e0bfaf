"""Documents, not chunks: rank a query's candidate chunks as documents (`"group_by": "document"`), and score a
ranking of documents. Pure: no index, store or encoder.

A representation's ranked chunk list becomes a list of documents: its **prefix** up to the first chunk of its
`c`-th distinct document (`c` = the candidates per list), each document once, in the order of its best chunk and
with its best chunk's score (`document_list`). Fusion and rerank then run over documents (`rank_documents`,
`rerank_documents`): equal fused scores are ordered by ascending document id. Within a document its candidate
chunks are ordered by the same fusion at chunk level (one list: that list's order); a rerank scores the best
`group_size` chunks of each of its `top_n` documents and a document takes its best chunk's rerank score.

The search (`retrieval.search.hits`), `/evaluate` and `tune` all rank documents with these functions;
`/evaluate` and `tune` score the rankings with `retrieval.evaluation.figures.document_figures`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from retrieval.search.fusion import FusionConfig, RankedList, fuse

__all__ = [
    "DocumentRanking",
    "GroupBy",
    "docs_in",
    "document_list",
    "list_depth",
    "prefix_of",
    "rank_documents",
    "rerank_chunks",
    "rerank_documents",
]

GroupBy = Literal["document"]
"""What hits are grouped by: `document` (the top `k` are `k` distinct documents)."""


def list_depth(candidates: int, top_k: int) -> int:
    """Documents each representation contributes to a search of `top_k` (enough to fill it on its own).

    >>> list_depth(100, 10), list_depth(50, 100)
    (100, 100)
    """
    return max(candidates, top_k)


def docs_in(chunks: RankedList, doc_of: Mapping[int, str]) -> int:
    """Distinct known documents among a chunk list's ids."""
    return len({doc_of[i] for i in chunks.ids.tolist() if i in doc_of})


def prefix_of(chunks: RankedList, doc_of: Mapping[int, str], c: int) -> RankedList:
    """The chunk list cut right after the first chunk of its `c`-th distinct document (all of it with fewer);
    chunks of unknown documents (deleted meanwhile) dropped. The cut depends only on the list's head, so a longer
    fetch of the same list gives the same prefix.

    >>> lst = RankedList(np.array([5, 6, 7, 8, 9]), np.array([.9, .8, .7, .6, .5], np.float32))
    >>> prefix_of(lst, {5: "a", 6: "a", 7: "b", 8: "a", 9: "c"}, 2).ids.tolist()
    [5, 6, 7]
    """
    seen: set[str] = set()
    rows: list[int] = []
    for row, cid in enumerate(chunks.ids.tolist()):
        doc = doc_of.get(cid)
        if doc is None:
            continue
        rows.append(row)
        if doc not in seen:
            seen.add(doc)
            if len(seen) == c:
                break
    keep = np.array(rows, np.int64)
    return RankedList(chunks.ids[keep], chunks.scores[keep])


def document_list(prefix: RankedList, doc_of: Mapping[int, str], key: Mapping[str, int]) -> RankedList:
    """Each document of a chunk prefix once, as its key, in the order of its best (first) chunk, with that
    chunk's score: int64 (d,), float32 (d,)."""
    seen: dict[str, float] = {}
    for cid, score in zip(prefix.ids.tolist(), prefix.scores.tolist(), strict=True):
        seen.setdefault(doc_of[cid], score)
    return RankedList(np.array([key[d] for d in seen], np.int64), np.array(list(seen.values()), np.float32).reshape(-1))


@dataclass
class DocumentRanking:
    """One query's documents, best first, with their candidate chunks and every stage's scores."""

    docs: list[str]  # document ids, best first
    scores: list[float]  # each document's final score (rerank, fusion, or the single list's best chunk)
    stage: str  # the stage of the scores before rerank: "fusion", or the single representation
    lists: dict[str, dict[str, float]]  # representation -> document -> its score there (its best chunk's)
    fused: dict[str, float]  # document -> fused score (empty for one list)
    chunks: dict[str, list[int]]  # document -> its candidate chunk ids, best first
    chunk_scores: dict[str, dict[int, float]]  # stage -> chunk -> score (each list's, "fusion" at chunk level)
    reranked: dict[str, float] = field(default_factory=dict)  # document -> rerank score (its best chunk's)


def rank_documents(
    lists: Mapping[str, RankedList], doc_of: Mapping[int, str], fusion: FusionConfig, candidates: int
) -> DocumentRanking:
    """Rank documents from each representation's chunk list (best first; `doc_of`: chunk id -> document id):
    every list cut to its first `candidates` documents, then fused over documents (one list: its order)."""
    prefixes = {name: prefix_of(lst, doc_of, candidates) for name, lst in lists.items()}
    names = sorted({doc_of[i] for p in prefixes.values() for i in p.ids.tolist()})
    key = {d: n for n, d in enumerate(names)}  # ascending document id: fusion's ties go to the smaller one
    per_list = {name: document_list(p, doc_of, key) for name, p in prefixes.items()}
    if len(per_list) == 1:
        ((stage, order),) = per_list.items()
        chunk_order = next(iter(prefixes.values()))
    else:
        stage, order, chunk_order = "fusion", fuse(per_list, fusion), fuse(prefixes, fusion)
    chunks: dict[str, list[int]] = {}
    for cid in chunk_order.ids.tolist():
        chunks.setdefault(doc_of[cid], []).append(cid)
    chunk_scores = {name: _scores(p) for name, p in prefixes.items()}
    if stage == "fusion":
        chunk_scores["fusion"] = _scores(chunk_order)
    docs = [names[k] for k in order.ids.tolist()]
    return DocumentRanking(
        docs,
        [float(s) for s in order.scores.tolist()],
        stage,
        {name: {names[k]: s for k, s in _scores(lst).items()} for name, lst in per_list.items()},
        dict(zip(docs, (float(s) for s in order.scores.tolist()), strict=True)) if stage == "fusion" else {},
        chunks,
        chunk_scores,
    )


def _scores(lst: RankedList) -> dict[int, float]:
    return {int(i): float(s) for i, s in zip(lst.ids.tolist(), lst.scores.tolist(), strict=True)}


def rerank_chunks(ranking: DocumentRanking, top_n: int, group_size: int) -> list[int]:
    """The chunks a rerank scores: the best `group_size` candidate chunks of each of the best `top_n` documents."""
    return [cid for doc in ranking.docs[:top_n] for cid in ranking.chunks[doc][:group_size]]


def rerank_documents(ranking: DocumentRanking, scored: Mapping[int, float], top_n: int) -> DocumentRanking:
    """The ranking after a rerank of its best `top_n` documents: each takes its best scored chunk's score (a
    document with none scored keeps its place after them), they lead in that order (ties keep their order), the
    rest follow; within a document the scored chunks lead, by score."""
    head = [d for d in ranking.docs[:top_n] if any(c in scored for c in ranking.chunks[d])]
    best = {d: max(scored[c] for c in ranking.chunks[d] if c in scored) for d in head}
    lead = sorted(head, key=lambda d: -best[d])
    rest = [d for d in ranking.docs if d not in best]
    before = dict(zip(ranking.docs, ranking.scores, strict=True))
    chunks = dict(ranking.chunks)
    for d in head:
        own = chunks[d]
        chunks[d] = sorted((c for c in own if c in scored), key=lambda c: -scored[c]) + [
            c for c in own if c not in scored
        ]
    docs = lead + rest
    scores = [best[d] if d in best else before[d] for d in docs]
    rerank = {c: float(scored[c]) for d in head for c in chunks[d] if c in scored}
    chunk_scores = {**ranking.chunk_scores, "rerank": rerank}
    return replace(ranking, docs=docs, scores=scores, chunks=chunks, chunk_scores=chunk_scores, reranked=best)
