"""The one way `/evaluate` and `tune` score a search setting on judgments: nDCG@10 and MRR@10 of a top-10
document search, recall@100 of a top-100 one, both with the setting's candidates per list (the documents
ranked as a grouped search ranks them, `retrieval.search.documents`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from retrieval.evaluation.measures import EvalRow, Qrels, mrr_at_k, ndcg_at_k, recall_at_k
from retrieval.search.documents import DocumentRanking, list_depth, rank_documents
from retrieval.search.fusion import FusionConfig, RankedList

__all__ = ["document_figures"]


def document_figures(
    mode: str,
    label: str | None,
    queries: Sequence[tuple[str, Mapping[str, RankedList], Mapping[int, str]]],
    fusion: FusionConfig,
    candidates: int,
    qrels: Qrels,
    rerank: Callable[[int, DocumentRanking], DocumentRanking] | None = None,
) -> EvalRow:
    """nDCG@10 and MRR@10 of a top-10 document search, recall@100 of a top-100 one, each with `candidates`
    documents per list (`queries`: (query id, representation -> chunk list, chunk -> document) each; `rerank`:
    applied to query i's ranking). The one way `/evaluate` and `tune` score a setting."""
    top10: dict[str, list[str]] = {}
    top100: dict[str, list[str]] = {}
    for i, (qid, lists, doc_of) in enumerate(queries):
        for depth, run in ((10, top10), (100, top100)):
            ranking = rank_documents(lists, doc_of, fusion, list_depth(candidates, depth))
            run[qid] = (rerank(i, ranking) if rerank is not None else ranking).docs[:depth]
    judged = {q: qrels[q] for q, _, _ in queries if q in qrels}
    return EvalRow(mode, label, ndcg_at_k(top10, judged, 10), recall_at_k(top100, judged, 100), mrr_at_k(top10, judged))
