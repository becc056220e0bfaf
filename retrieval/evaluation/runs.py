"""Evaluate a collection on the user's own judgments: every mode it keeps, and hybrid under each fusion.

All queries are encoded in one job per model and each index is searched once per query batch, deep enough for
`max(candidates, 100)` distinct documents per list; fusion is pure numpy on the cached lists, so trying several
fusion settings costs almost nothing. Judged ids are document ids, and what is scored is what a search with
`"group_by": "document"` and the collection's `candidates` returns (`retrieval.search.documents.
document_figures`, the function `tune` scores with): nDCG@10 and MRR@10 of its top 10, recall@100 of its top 100.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from retrieval.errors import InvalidRequestError
from retrieval.evaluation.figures import document_figures
from retrieval.evaluation.measures import EvalRow
from retrieval.indexes import Family
from retrieval.search.candidates import document_lists
from retrieval.search.documents import list_depth
from retrieval.search.fusion import FusionConfig, RankedList
from retrieval.search.hits import SearchRunner
from retrieval.search.queries import query_vectors

__all__ = ["DEFAULT_FUSIONS", "EvalRequest", "evaluate", "fusion_label", "judged_warnings", "search_lists"]

DEFAULT_FUSIONS: tuple[FusionConfig, ...] = (
    FusionConfig(method="rrf", k=60),
    FusionConfig(method="rrf", k=2),
    FusionConfig(method="weighted"),
    FusionConfig(method="dbsf"),
)
_DEPTH = 100  # the deepest cut scored (recall@100)


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
    candidates = runner.spec.candidates
    depth = list_depth(candidates, _DEPTH)
    lists, doc_of = await asyncio.to_thread(search_lists, runner, have, qv.values, texts, depth)

    def queries(families: Sequence[str]) -> list[tuple[str, dict[str, RankedList], dict[int, str]]]:
        return [(q, {f: lists[f][i] for f in families}, doc_of) for i, q in enumerate(qids)]

    rows = [document_figures(m, None, queries([m]), FusionConfig(), candidates, req.qrels) for m in modes]
    if len(have) > 1:
        for fusion in req.fusions or DEFAULT_FUSIONS:
            label = fusion_label(fusion)
            rows.append(document_figures("hybrid", label, queries(have), fusion, candidates, req.qrels))
    return rows


def search_lists(
    runner: SearchRunner, families: Sequence[str], values: Mapping[str, Any], texts: Sequence[str], need: int
) -> tuple[dict[str, list[RankedList]], dict[int, str]]:
    """Each family's chunk list per query, every one holding `need` distinct documents (or all that match), and
    chunk id -> document id for their chunks (`retrieval.search.candidates.document_lists`). `values`: the
    queries' vectors per family (`QueryVectors.values`), `texts` their text (BM25)."""
    out: dict[str, list[RankedList]] = {}
    doc_of: dict[int, str] = {}
    for family in families:
        queries = list(texts) if family == "bm25" else values[family]
        found, _ = document_lists(runner.indexes, runner.store, runner.spec.name, family, queries, need, doc_of=doc_of)
        out[family] = found
    return out, doc_of


def judged_warnings(runner: SearchRunner, qrels: Mapping[str, Mapping[str, int]], split: str = "") -> list[str]:
    """What a reader of the figures must know about the judgments: judged (relevant) documents the collection
    does not hold count as never found, so a collection holding none of them scores 0 everywhere."""
    judged = sorted({d for grades in qrels.values() for d, g in grades.items() if g > 0})
    if not judged:
        return []
    name = runner.spec.name
    present = runner.store.content_hashes(name, judged)
    missing = len(judged) - len(present)
    which = f" ({split})" if split else ""
    if not present:
        return [
            f"none of the {len(judged)} judged documents{which} is in collection `{name}`: every figure is 0. "
            f"Ingest the corpus the judgments are about first, e.g. `retrieval ingest {name} DIR/corpus.jsonl`"
        ]
    if missing:
        return [f"{missing} of the {len(judged)} judged documents{which} are not in collection `{name}`: never found"]
    return []
