"""The tuner's inputs: every representation's ranked lists per query, searched once (batched) deep enough for the
deepest candidate count in documents (`retrieval.evaluation.runs.search_lists`, as `/evaluate` searches), as
chunk lists and as document lists (the fast scorer's), with the query's judgments; and exact MaxSim scores
computed on demand and kept."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from poolers.maxsim import maxsim
from retrieval.evaluation.measures import Qrels
from retrieval.evaluation.runs import search_lists
from retrieval.evaluation.tune.grid import Judged, QueryCache
from retrieval.search.documents import document_list, prefix_of
from retrieval.search.fusion import RankedList
from retrieval.search.hits import SearchRunner
from retrieval.search.queries import query_vectors

__all__ = ["MaxSimCache", "judged_of", "query_caches", "relevant_qids"]

_BATCH = 64  # queries encoded and searched together


class MaxSimCache:
    """Exact float32 MaxSim of query token vectors against stored chunk token vectors, computed once per pair."""

    def __init__(self, runner: SearchRunner, queries: Sequence[np.ndarray]) -> None:
        self.runner, self.queries = runner, queries
        self.cache: list[dict[int, float]] = [{} for _ in queries]

    def scores(self, q: int, ids: Sequence[int]) -> dict[int, float]:
        known = self.cache[q]
        missing = [i for i in ids if i not in known]
        if missing:
            rows = self.runner.store.get_chunks(
                self.runner.spec.name, np.array(missing, np.int64), vectors=["multivector"]
            )
            for r in rows:
                if r.multivector is not None:
                    known[r.chunk_id] = float(maxsim(self.queries[q], r.multivector[None])[0])
        return {i: known.get(i, -math.inf) for i in ids}


def judged_of(qrels: Qrels, qids: Sequence[str]) -> list[Judged]:
    out = []
    for q in qids:
        grades = qrels[q]
        ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:10]
        idcg = math.fsum(g / math.log2(r + 1) for r, g in enumerate(ideal, start=1))
        out.append(Judged({d: float(max(g, 0)) for d, g in grades.items()}, idcg))
    return out


def relevant_qids(queries: Mapping[str, str], qrels: Qrels | None) -> list[str]:
    return [q for q in (qrels or {}) if q in queries and any(g > 0 for g in (qrels or {})[q].values())]


async def _search(
    runner: SearchRunner, families: Sequence[str], texts: list[str], depth: int, tick: Callable[[int], None]
) -> tuple[dict[str, list[RankedList]], dict[int, str], list[np.ndarray]]:
    """Every family's chunk list per query holding `depth` documents (batched), chunk -> document, and the query
    token vectors (for MaxSim)."""
    lists: dict[str, list[RankedList]] = {f: [] for f in families}
    doc_of: dict[int, str] = {}
    tokens: list[np.ndarray] = []
    wanted = list(families) + (["multivector"] if runner.spec.multivector_model else [])
    for start in range(0, len(texts), _BATCH):
        batch = texts[start : start + _BATCH]
        qv = await query_vectors(runner.enc, batch, wanted)
        if "multivector" in qv.values:
            tokens += list(qv.values["multivector"])
        found, seen = await asyncio.to_thread(search_lists, runner, families, qv.values, batch, depth)
        for family in families:
            lists[family] += found[family]
        doc_of.update(seen)
        tick(len(batch))
    return lists, doc_of, tokens


async def query_caches(
    runner: SearchRunner,
    families: Sequence[str],
    queries: Mapping[str, str],
    qids: list[str],
    qrels: Qrels,
    depth: int,
    tick: Callable[[int], None],
) -> tuple[list[QueryCache], MaxSimCache | None]:
    lists, doc_of, tokens = await _search(runner, families, [queries[q] for q in qids], depth, tick)
    names = sorted(set(doc_of.values()))
    key = {d: n for n, d in enumerate(names)}  # ascending document id, as `rank_documents` breaks ties
    judged = judged_of(qrels, qids)
    caches = []
    for i in range(len(qids)):
        chunks = {f: lists[f][i] for f in families}
        docs = {f: document_list(prefix_of(lst, doc_of, depth), doc_of, key) for f, lst in chunks.items()}
        caches.append(QueryCache(docs, dict(enumerate(names)), judged[i], chunks, doc_of))
    return caches, (MaxSimCache(runner, tokens) if tokens else None)
