"""Evaluate a collection on the user's own judgments: every mode it keeps, and hybrid under each fusion.

All queries are encoded in one job per model and each index is searched once per query batch; fusion is pure
numpy on the cached lists, so trying several fusion settings costs almost nothing. Judged ids are document ids:
a chunk's hit counts for its parent (first occurrence).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.errors import InvalidRequestError
from retrieval.evaluation import EvalRow, dedupe, evaluate_run
from retrieval.indexes import Family
from retrieval.search.fusion import FusionConfig, RankedList, fuse
from retrieval.search.hits import SearchRunner
from retrieval.search.planner import family_query, ranked
from retrieval.search.queries import query_vectors

__all__ = ["DEFAULT_FUSIONS", "EvalRequest", "chunk_parents", "evaluate", "fusion_label"]

DEFAULT_FUSIONS: tuple[FusionConfig, ...] = (
    FusionConfig(method="rrf", k=60),
    FusionConfig(method="rrf", k=2),
    FusionConfig(method="weighted"),
    FusionConfig(method="dbsf"),
)
_DEPTH = 100  # candidates per list (recall@100)


@dataclass(frozen=True)
class EvalRequest:
    """Queries and judgments to evaluate with."""

    queries: Mapping[str, str]  # query id -> text
    qrels: Mapping[str, Mapping[str, int]]  # query id -> document id -> grade (> 0 relevant)
    modes: Sequence[str] | None = None  # single modes to report (None = every mode the collection has)
    fusions: Sequence[FusionConfig] | None = None  # fusions for hybrid (None = rrf 60, rrf 2, weighted, dbsf)


def fusion_label(f: FusionConfig) -> str:
    """A short label: `rrf k=60`, `weighted`, `weighted dense=0.7,bm25=0.3`, `dbsf`."""
    if f.method == "rrf":
        return f"rrf k={f.k}"
    if f.weights:
        return f"{f.method} " + ",".join(f"{k}={v:g}" for k, v in sorted(f.weights.items()))
    return f.method


async def evaluate(runner: SearchRunner, req: EvalRequest) -> list[EvalRow]:
    """One row per single mode, and one per fusion when the collection keeps two or more representations."""
    have: list[Family] = list(runner.spec.modes())  # type: ignore[arg-type]
    modes = list(req.modes) if req.modes is not None else list(have)
    unknown = [m for m in modes if m not in have]
    if unknown:
        raise InvalidRequestError(f"collection has no {unknown} representation", param="modes", allowed=have)
    qids = [q for q in req.queries if q in req.qrels]
    if not qids:
        raise InvalidRequestError("no query has judgments in qrels", param="qrels")
    texts = [req.queries[q] for q in qids]
    qv = await query_vectors(runner.enc, texts, have)
    lists = await asyncio.to_thread(_search_all, runner, have, qv.values, texts)
    doc_of = await asyncio.to_thread(chunk_parents, runner, lists)
    rows = [
        evaluate_run(m, None, _run(qids, [lists[m][i] for i in range(len(qids))], doc_of), req.qrels) for m in modes
    ]
    if len(have) > 1:
        for fusion in req.fusions or DEFAULT_FUSIONS:
            fused = [fuse({m: lists[m][i] for m in have}, fusion) for i in range(len(qids))]
            rows.append(evaluate_run("hybrid", fusion_label(fusion), _run(qids, fused, doc_of), req.qrels))
    return rows


def _search_all(
    runner: SearchRunner, have: list[Family], values: Mapping[str, object], texts: list[str]
) -> dict[str, list[RankedList]]:
    out: dict[str, list[RankedList]] = {}
    for family in have:
        out[family] = [
            ranked(runner.indexes.search(family, family_query(family, values, texts, i), _DEPTH, None))
            for i in range(len(texts))
        ]
    return out


def chunk_parents(runner: SearchRunner, lists: Mapping[str, list[RankedList]]) -> dict[int, str]:
    """Chunk id -> its document's id, for every chunk in `lists` (family -> one ranked list per query)."""
    ids = np.unique(np.concatenate([r.ids for rs in lists.values() for r in rs] or [np.zeros(0, np.int64)]))
    out: dict[int, str] = {}
    for start in range(0, ids.size, 5000):
        for row in runner.store.get_chunks(runner.spec.name, ids[start : start + 5000]):
            out[row.chunk_id] = row.doc_id
    return out


def _run(qids: list[str], lists: Sequence[RankedList], doc_of: Mapping[int, str]) -> dict[str, list[str]]:
    return {q: dedupe(doc_of[c] for c in lst.ids.tolist() if c in doc_of) for q, lst in zip(qids, lists, strict=True)}
