"""`POST /v1/collections/{name}/search` and `/evaluate` bodies, converted to `SearchPlan` / `EvalRequest`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from encoder import MultimodalInput, content_input
from retrieval.errors import InvalidRequestError, LimitExceededError
from retrieval.evaluation.measures import EvalRow
from retrieval.evaluation.runs import EvalRequest
from retrieval.search.documents import GroupBy
from retrieval.search.fusion import FusionConfig
from retrieval.search.hits import Answer, Hit
from retrieval.search.planner import Rerank, SearchPlan, modes_of
from retrieval.spec.collection import CollectionSpec, Mode

__all__ = [
    "ChunkObject",
    "EvalResponse",
    "EvalResult",
    "EvaluateRequest",
    "HitObject",
    "QueryContent",
    "RerankOptions",
    "SearchLimits",
    "SearchRequest",
    "SearchResponse",
    "eval_response",
    "page_url",
    "ran_mode",
    "search_response",
]


class SearchLimits(msgspec.Struct, frozen=True):
    """The configured bounds a search must respect (from ServiceConfig)."""

    max_top_k: int  # top_k and candidates at most this
    max_query_chars: int  # query text at most this many characters


class QueryContent(msgspec.Struct, frozen=True):
    """A query as OpenAI content parts."""

    content: list[dict[str, Any]]  # [{"type": "text", "text": ...}, ...]


class RerankOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    model: str | None = None  # served cross-encoder / late-interaction model; None = the collection's reranker
    top_n: int = 20  # candidates reranked


class SearchRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Exactly one of `query` or `like`."""

    query: str | QueryContent | None = None  # the query text, or content parts
    top_k: int = 10  # hits returned
    mode: Mode = "hybrid"  # dense | multivector | sparse | bm25 | hybrid
    filter: dict[str, Any] | None = None  # metadata filter in operator form ($eq, $in, $gt, $and, $or, ...)
    fusion: FusionConfig | None = None  # hybrid fusion; None = the collection's default
    rerank: RerankOptions | None = None  # optional rerank stage; None = the collection's default (rerank_depth)
    candidates: int | None = None  # candidates per representation before fusion and rerank; None = collection's
    like: str | None = None  # "more like this": a stored document id
    allow_partial: bool = False  # sharded collection: with a shard down, answer from the others (`partial`)
    group_by: GroupBy | None = None  # "document": the top_k hits are top_k distinct documents (default: chunks)
    group_size: int = 1  # with group_by: best chunks returned per document (1..100), in the hit's `chunks`

    def to_plan(self, spec: CollectionSpec, limits: SearchLimits) -> SearchPlan:
        """The validated plan: limits checked, query typed, modes resolved against the collection."""
        candidates = self.candidates if self.candidates is not None else spec.candidates
        _check_count("top_k", self.top_k, limits.max_top_k)
        _check_count("candidates", candidates, max(limits.max_top_k, spec.candidates))
        if self.rerank is not None:
            _check_count("rerank.top_n", self.rerank.top_n, limits.max_top_k)
        if (self.query is None) == (self.like is None):
            raise InvalidRequestError("give exactly one of `query` or `like`", param="query")
        query = self._query(limits.max_query_chars)
        rerank = Rerank(self.rerank.model, self.rerank.top_n) if self.rerank is not None else None
        if rerank is None and spec.rerank_depth > 0 and self.like is None:
            rerank = Rerank(None, spec.rerank_depth)  # the collection's tuned default
        return SearchPlan(
            query=query,
            top_k=self.top_k,
            mode=self.mode,
            filter=self.filter,
            fusion=self.fusion,
            rerank=rerank,
            candidates=candidates,
            like=self.like,
            modes=modes_of(spec, self.mode),
            allow_partial=self.allow_partial,
            group_by=self.group_by,
            group_size=self.group_size,
        )

    def _query(self, max_chars: int) -> str | MultimodalInput | None:
        if isinstance(self.query, QueryContent):
            parts = content_input(self.query.content, "query")
            _check_length(parts.text(), max_chars)
            return parts
        _check_length(self.query or "", max_chars)
        return self.query


def _check_length(text: str, max_chars: int) -> None:
    if len(text) > max_chars:
        raise LimitExceededError("The query length in characters", len(text), max_chars, param="query")


def _check_count(param: str, value: int, limit: int) -> None:
    if value < 1:
        raise InvalidRequestError(f"`{param}` must be at least 1", param=param, received=value)
    if value > limit:
        raise LimitExceededError(f"`{param}`", value, limit, param=param)


class ChunkObject(msgspec.Struct, frozen=True, omit_defaults=True):
    """One chunk, as a hit or inside a document hit."""

    id: str  # the chunk's id: the document id, or `<doc>#<position>` for a chunk of a split document
    score: float  # the final score (rerank, fusion, or the single stage)
    text: str  # the chunk's text
    metadata: dict[str, Any]  # the document's metadata
    chunk: int  # position of the chunk in its document
    char_start: int  # span of the chunk in the document's text
    char_end: int  # (end, exclusive)
    scores: dict[str, float]  # stage -> score: dense, multivector, sparse, bm25, fusion, rerank
    parent_id: str | None = None  # the document, when `id` is a chunk id
    page: int | None = None  # PDF page (1-based)
    source: str | None = None  # the file it came from
    file: str | None = None  # the file a page hit came from (as `source`; set for PDF pages)
    page_image_url: str | None = None  # GET it for the page's PNG (page-image collections)
    thumbnail_url: str | None = None  # GET it for the page's JPEG thumbnail


class HitObject(ChunkObject, frozen=True, omit_defaults=True):
    """One hit, best first: a chunk, or with `group_by: "document"` a document (its best chunk's fields, the
    document's score and stage scores)."""

    chunks: list[ChunkObject] = []  # a document hit with group_size > 1: its best chunks (its own first)


class SearchResponse(msgspec.Struct, frozen=True):
    data: list[HitObject]  # hits, best first (documents with `group_by`)
    mode: Mode  # the mode that ran: `hybrid` only when two or more lists were fused, else the one list's mode
    lists: list[str] = []  # the ranked lists the answer was made from (fused when more than one)
    object: Literal["list"] = "list"  # the object type
    partial: bool = False  # sharded collection: some shard did not answer (`allow_partial`); hits of the others
    shards: list[int] | msgspec.UnsetType = msgspec.UNSET  # sharded collection: the shards the hits cover


def page_url(collection: str, digest: str, kind: str) -> str:
    """Where a page's image (`image`) or thumbnail (`thumbnail`) is served.

    >>> page_url("docs", "ab" * 32, "thumbnail").replace("ab" * 32, "<sha256>")
    '/v1/collections/docs/pages/<sha256>/thumbnail'
    """
    return f"/v1/collections/{collection}/pages/{digest}/{kind}"


def _chunk_fields(h: Hit, collection: str) -> dict[str, Any]:
    image = h.page_image
    urls = {} if image is None else {field: page_url(collection, image.digest, kind) for field, kind in _URLS.items()}
    return {
        "id": h.id,
        "score": h.score,
        "text": h.text,
        "metadata": h.metadata,
        "chunk": h.chunk,
        "char_start": h.char_start,
        "char_end": h.char_end,
        "scores": dict(h.scores),
        "parent_id": h.doc_id if h.id != h.doc_id else None,
        "page": h.page,
        "source": h.source,
        "file": h.source if h.page is not None else None,
        **urls,
    }


_URLS = {"page_image_url": "image", "thumbnail_url": "thumbnail"}  # hit field -> the page file it serves


def _hit(h: Hit, collection: str) -> HitObject:
    inner = [ChunkObject(**_chunk_fields(c, collection)) for c in h.chunks]
    return HitObject(**_chunk_fields(h, collection), chunks=inner)


def ran_mode(lists: Sequence[str]) -> Mode:
    """The mode an answer reports: `hybrid` when several lists were fused, else the one list's mode.

    >>> ran_mode(["dense", "bm25"]), ran_mode(["bm25"])
    ('hybrid', 'bm25')
    """
    return "hybrid" if len(lists) != 1 else lists[0]  # type: ignore[return-value]


def search_response(
    answer: Answer, collection: str, answered: list[int] | None = None, shards: int = 1
) -> SearchResponse:
    """The wire answer; `answered`: the shards of a sharded collection that answered (of `shards`)."""
    data = [_hit(h, collection) for h in answer.hits]
    mode, lists = ran_mode(answer.lists), list(answer.lists)
    if answered is None:
        return SearchResponse(data, mode, lists)
    return SearchResponse(data, mode, lists, partial=len(answered) < shards, shards=answered)


class EvaluateRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/collections/{name}/evaluate`: the caller's queries and judgments."""

    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, int]]  # query id -> document id -> grade (> 0 relevant)
    modes: list[str] | None = None  # single modes to report; None = every mode the collection has
    fusions: list[FusionConfig] | None = None  # fusions for hybrid; None = rrf k=60, rrf k=2, weighted, dbsf

    def to_request(self, limits: SearchLimits) -> EvalRequest:
        for qid, text in self.queries.items():
            if len(text) > limits.max_query_chars:
                raise LimitExceededError(
                    f"The length of query `{qid}` in characters", len(text), limits.max_query_chars, param="queries"
                )
        return EvalRequest(self.queries, self.qrels, self.modes, self.fusions)


class EvalResult(msgspec.Struct, frozen=True, omit_defaults=True):
    mode: str  # dense | multivector | sparse | bm25 | hybrid
    ndcg_at_10: float  # mean nDCG@10 in [0, 1]
    recall_at_100: float  # mean recall@100 in [0, 1]
    mrr_at_10: float  # mean MRR@10 in [0, 1]
    fusion: str | None = None  # fusion label for hybrid rows (`rrf k=60`, `weighted`, `dbsf`)


class EvalResponse(msgspec.Struct, frozen=True):
    data: list[EvalResult]  # one row per mode, and per fusion for hybrid
    queries: int  # queries evaluated (those with judgments)
    warnings: list[str] = []  # e.g. judged documents the collection does not hold (they count as never found)


def eval_response(rows: list[EvalRow], req: EvalRequest, warnings: list[str] | None = None) -> EvalResponse:
    data = [EvalResult(r.mode, r.ndcg_at_10, r.recall_at_100, r.mrr_at_10, r.fusion) for r in rows]
    return EvalResponse(data, sum(1 for q in req.queries if q in req.qrels), list(warnings or []))
