"""Run a search plan against one collection and return cited hits.

Stages: allowed ids from the filter -> query vectors -> candidates per representation -> fusion -> rerank of
the best `top_n` (a served cross-encoder / late-interaction model, or exact MaxSim over the stored token
vectors) -> hits with text, metadata, parent document, position, page and every stage's score.

Hits are chunks; with `group_by: "document"` they are documents (`retrieval.search.documents`): each list is
fetched deep enough to hold its candidates as distinct documents (`retrieval.search.candidates`), fusion and
rerank run over documents, and each hit is a document's best chunk carrying its best `group_size` chunks.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from encoder import MultimodalInput, TokenOptions
from poolers.maxsim import maxsim
from retrieval.errors import InvalidRequestError
from retrieval.indexes import IndexSet
from retrieval.models.registry import ModelRegistry
from retrieval.models.serving.scoring import ScoreOptions, score
from retrieval.search.candidates import document_lists, without
from retrieval.search.documents import DocumentRanking, list_depth, rank_documents, rerank_chunks, rerank_documents
from retrieval.search.filters import compile_filter, parse_filter
from retrieval.search.fusion import FusionConfig, RankedList
from retrieval.search.planner import (
    Candidates,
    SearchPlan,
    family_query,
    fuse_candidates,
    modes_of,
    search_families,
    weighted_modes,
)
from retrieval.search.queries import QueryVectors, image_modes, image_query_vectors, query_vectors
from retrieval.spec.collection import CollectionSpec
from retrieval.spec.encoders import Encoders
from retrieval.store import ChunkRow, PageImage, Store

__all__ = ["Answer", "Hit", "SearchRunner"]

I64 = npt.NDArray[np.int64]
_RERANK_OPTIONS = ScoreOptions(tokens=TokenOptions(truncate_prompt_tokens=-1))


@dataclass(frozen=True)
class Hit:
    """One search result: a chunk, where it comes from, and why it ranked."""

    id: str  # the chunk's id: the document id for a one-chunk document, else "<doc id>#<position>"
    doc_id: str  # the parent document's id
    chunk: int  # position of the chunk in its document
    score: float  # the final score (rerank, fusion, or the single stage)
    text: str  # the chunk's text
    metadata: dict[str, Any]  # the document's metadata
    page: int | None = None  # PDF page, when the document is a page
    source: str | None = None  # the file it came from
    char_start: int = 0  # span of the chunk in its document's text
    char_end: int = 0  # (end, exclusive)
    scores: dict[str, float] = field(default_factory=dict)  # stage -> score (dense, bm25, fusion, rerank, ...)
    page_image: PageImage | None = None  # the rendered page, when the document is a page image
    chunks: tuple[Hit, ...] = ()  # a document hit (group_size > 1): its best chunks, this hit's own first


@dataclass(frozen=True)
class Answer:
    """A search's hits, and the ranked lists they were made from."""

    hits: list[Hit]  # best first
    lists: tuple[str, ...]  # representations searched (fused when more than one)


class SearchRunner:
    """Searches one collection (built per request; holds no state of its own)."""

    def __init__(
        self, spec: CollectionSpec, enc: Encoders, indexes: IndexSet, store: Store, models: ModelRegistry
    ) -> None:
        self.spec, self.enc, self.indexes, self.store, self.models = spec, enc, indexes, store, models

    async def search(self, plan: SearchPlan) -> list[Hit]:
        return (await self.answer(plan)).hits

    async def answer(self, plan: SearchPlan) -> Answer:
        """The hits of `plan`, and which representations were searched (a hybrid search of a collection that
        keeps one representation searches that one alone, and says so)."""
        if not plan.modes:
            plan = dataclasses.replace(plan, modes=modes_of(self.spec, plan.mode))
        modes, fusion = weighted_modes(plan.modes, plan.fusion or self.spec.fusion)
        plan = dataclasses.replace(plan, modes=modes)
        allowed = await asyncio.to_thread(self.allowed_ids, plan.filter)
        if isinstance(allowed, np.ndarray) and allowed.size == 0:  # (a sharded collection pushes the filter down)
            return Answer([], plan.modes)
        exclude: set[int] = set()
        if plan.like is not None:
            qv, exclude = await asyncio.to_thread(self._like, plan.like)
        elif isinstance(query := plan.query, MultimodalInput) and not query.is_text_only:
            plan = dataclasses.replace(plan, modes=image_modes(self.spec, self.enc, query, plan.modes))
            qv = await image_query_vectors(self.enc, query, plan.modes)
        else:
            qv = await query_vectors(self.enc, [_text(plan.query)], plan.modes)
        if plan.group_by is not None:
            return Answer(await self._documents(plan, qv, allowed, exclude, fusion), plan.modes)
        cands = await search_families(self.indexes, plan, qv.values, qv.texts, allowed)
        for name, lst in cands.lists.items():
            cands.lists[name] = without(lst, exclude)
        cands = fuse_candidates(cands, fusion)
        assert cands.order is not None
        reranked: dict[int, float] = {}
        if plan.rerank is not None:
            reranked = await self._rerank(plan, qv, cands.order.ids[: plan.rerank.top_n])
        return Answer(await asyncio.to_thread(self._hits, plan, cands, reranked), plan.modes)

    # -- documents ------------------------------------------------------------------------------------
    async def _documents(
        self, plan: SearchPlan, qv: QueryVectors, allowed: Any, exclude: set[int], fusion: FusionConfig
    ) -> list[Hit]:
        """Document hits: lists deep enough for `max(candidates, top_k)` documents each, fused over documents,
        the best `rerank.top_n` documents reranked by their best `group_size` chunks."""
        need = list_depth(plan.candidates, plan.top_k)
        lists, doc_of = await asyncio.to_thread(self._document_lists, plan, qv, allowed, exclude, need)
        ranking = rank_documents(lists, doc_of, fusion, need)
        if plan.rerank is not None:
            chunks = rerank_chunks(ranking, plan.rerank.top_n, plan.group_size)
            scored = await self._rerank(plan, qv, np.array(chunks, np.int64))
            ranking = rerank_documents(ranking, scored, plan.rerank.top_n)
        return await asyncio.to_thread(self._document_hits, plan, ranking)

    def _document_lists(
        self, plan: SearchPlan, qv: QueryVectors, allowed: Any, exclude: set[int], need: int
    ) -> tuple[dict[str, RankedList], dict[int, str]]:
        lists: dict[str, RankedList] = {}
        doc_of: dict[int, str] = {}
        for family in plan.modes:
            query = family_query(family, qv.values, qv.texts, 0)
            (lists[family],), _ = document_lists(
                self.indexes, self.store, self.spec.name, family, query, need,
                allowed=allowed, exclude=exclude, doc_of=doc_of,
            )  # fmt: skip
        return lists, doc_of

    def _document_hits(self, plan: SearchPlan, ranking: DocumentRanking) -> list[Hit]:
        docs = list(zip(ranking.docs, ranking.scores, strict=True))[: plan.top_k]
        picked = {d: ranking.chunks[d][: plan.group_size] for d, _ in docs}
        wanted = np.array([c for d, _ in docs for c in picked[d]], np.int64)
        rows = {r.chunk_id: r for r in self.store.get_chunks(self.spec.name, wanted)}
        images = self.store.page_images(self.spec.name, sorted({r.doc_id for r in rows.values() if r.page is not None}))
        hits = []
        for doc, final in docs:
            members = [rows[c] for c in picked[doc] if c in rows]
            if not members:  # deleted between search and hydration
                continue
            scores = {name: by_doc[doc] for name, by_doc in ranking.lists.items() if doc in by_doc}
            scores |= {"fusion": ranking.fused[doc]} if doc in ranking.fused else {}
            scores |= {"rerank": ranking.reranked[doc]} if doc in ranking.reranked else {}
            image = images.get(doc)
            inner = tuple(_chunk_hit(r, ranking, image) for r in members) if plan.group_size > 1 else ()
            hits.append(dataclasses.replace(_hit(members[0], final, scores, image), chunks=inner))
        return hits

    # -- filters --------------------------------------------------------------------------------------
    def allowed_ids(self, raw: Any) -> I64 | None:
        """Chunk ids whose document matches the filter (None: no filter)."""
        if raw is None:
            return None
        where, params = compile_filter(parse_filter(raw))
        return self.store.chunk_ids_where(self.spec.name, where, params)

    # -- more like this -------------------------------------------------------------------------------
    def _like(self, doc_id: str) -> tuple[QueryVectors, set[int]]:
        """Query values from a stored document: mean dense vector, first chunk's token vectors, summed sparse."""
        doc = self.store.get_document(self.spec.name, doc_id)
        rows = [
            self.store.get_chunk_by_key(self.spec.name, k, vectors=self.spec.vector_kinds()) for k in doc.chunk_keys
        ]
        qv = QueryVectors([" ".join(doc.text.split()[:256])])
        dense = [r.dense for r in rows if r.dense is not None]
        if dense:
            mean = np.mean(dense, axis=0)
            qv.values["dense"] = (mean / max(float(np.linalg.norm(mean)), 1e-12))[None].astype(np.float32)
        multi = [r.multivector for r in rows if r.multivector is not None]
        if multi:
            qv.values["multivector"] = [multi[0]]
        sparse: dict[int, float] = {}
        for r in rows:
            for t, w in (r.sparse or {}).items():
                sparse[t] = max(sparse.get(t, 0.0), w)
        if sparse:
            qv.values["sparse"] = [sparse]
        return qv, {r.chunk_id for r in rows}

    # -- rerank ---------------------------------------------------------------------------------------
    async def _rerank(self, plan: SearchPlan, qv: QueryVectors, top: I64) -> dict[int, float]:
        """Rerank scores of the chunks `top` (the rerank model's, or exact MaxSim)."""
        assert plan.rerank is not None
        model = plan.rerank.model or self.spec.reranker
        if top.size == 0:
            return {}
        if model is None or (model == self.spec.multivector_model and plan.like is None):
            if "multivector" not in qv.values and self.spec.multivector_model is not None and plan.like is None:
                extra = await query_vectors(self.enc, qv.texts, ["multivector"])  # the mode did not need them
                qv.values.update(extra.values)
            return await asyncio.to_thread(self._maxsim, qv, top, model is None)
        engine = self.models.get(model, param="rerank.model")
        rows = await asyncio.to_thread(self.store.get_chunks, self.spec.name, top)
        # a pair longer than the reranker reads is cut at its limit (as cross-encoders are used), never refused
        result = await score(engine, qv.texts[0], [r.text for r in rows], _RERANK_OPTIONS)
        return {r.chunk_id: s for r, s in zip(rows, result.scores, strict=True)}

    def _maxsim(self, qv: QueryVectors, top: I64, implicit: bool) -> dict[int, float]:
        """Exact MaxSim (float32) over the stored token vectors of the candidates."""
        if self.spec.multivector_model is None:
            hint = " (the collection has no default reranker)" if implicit else ""
            raise InvalidRequestError(
                f"rerank needs a model: name a served cross-encoder in rerank.model{hint}", param="rerank.model"
            )
        if "multivector" not in qv.values:  # "more like this": no query text to encode
            raise InvalidRequestError("exact MaxSim rerank needs a query; name a rerank.model", param="rerank")
        rows = self.store.get_chunks(self.spec.name, top, vectors=["multivector"])
        q = qv.values["multivector"][0]
        return {r.chunk_id: float(maxsim(q, r.multivector[None])[0]) for r in rows if r.multivector is not None}

    # -- hits -----------------------------------------------------------------------------------------
    def _hits(self, plan: SearchPlan, cands: Candidates, reranked: dict[int, float]) -> list[Hit]:
        assert cands.order is not None
        final = dict(zip(cands.order.ids.tolist(), cands.order.scores.tolist(), strict=True))
        ids = cands.order.ids.tolist()
        if reranked:
            head = sorted(reranked, key=lambda i: -reranked[i])
            ids = head + [i for i in ids if i not in reranked]
        ids = ids[: plan.top_k]
        rows = {r.chunk_id: r for r in self.store.get_chunks(self.spec.name, np.array(ids, np.int64))}
        images = self.store.page_images(self.spec.name, sorted({r.doc_id for r in rows.values() if r.page is not None}))
        stage_scores = {
            name: dict(zip(lst.ids.tolist(), lst.scores.tolist(), strict=True)) for name, lst in cands.lists.items()
        }
        hits = []
        for cid in ids:
            row = rows.get(cid)
            if row is None:  # deleted between search and hydration
                continue
            scores = {name: float(s[cid]) for name, s in stage_scores.items() if cid in s}
            if cands.stage == "fusion":
                scores["fusion"] = float(final[cid])
            if cid in reranked:
                scores["rerank"] = float(reranked[cid])
            top = scores["rerank"] if cid in reranked else float(final[cid])
            hits.append(_hit(row, top, scores, images.get(row.doc_id)))
        return hits


def _hit(row: ChunkRow, score_: float, scores: dict[str, float], image: PageImage | None) -> Hit:
    return Hit(
        id=row.key,
        doc_id=row.doc_id,
        chunk=row.position,
        score=score_,
        text=row.text,
        metadata=row.metadata,
        page=row.page,
        source=row.source,
        char_start=row.char_start,
        char_end=row.char_end,
        scores=scores,
        page_image=image,
    )


def _chunk_hit(row: ChunkRow, ranking: DocumentRanking, image: PageImage | None) -> Hit:
    """One chunk of a document hit, with its own scores (each list's, chunk-level fusion, rerank)."""
    cid = row.chunk_id
    scores = {stage: by_chunk[cid] for stage, by_chunk in ranking.chunk_scores.items() if cid in by_chunk}
    final = next((scores[s] for s in ("rerank", "fusion", ranking.stage) if s in scores), 0.0)
    return _hit(row, final, scores, image)


def _text(query: str | MultimodalInput | None) -> str:
    if isinstance(query, MultimodalInput):
        if not query.is_text_only:
            raise InvalidRequestError(
                "image queries need a collection whose multi-vector model reads images", param="query"
            )
        return query.text()
    if not query or not query.strip():
        raise InvalidRequestError("query must be a non-empty string", param="query")
    return query
