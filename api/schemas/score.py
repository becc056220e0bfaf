"""`POST /score` and `POST /rerank` (vLLM's ScoreRequest / RerankRequest and their responses)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from api.schemas.common import BasicRequest, UsageInfo, new_id, now, usage
from encoder import InvalidInputError, content_input
from retrieval.models.serving.scoring import ScoreInputs, ScoreItem, ScoreOptions, ScoreResult

__all__ = [
    "RerankDocument",
    "RerankRequest",
    "RerankResponse",
    "RerankResult",
    "RerankUsage",
    "ScoreContent",
    "ScoreData",
    "ScoreRequest",
    "ScoreResponse",
    "rerank_response",
    "score_response",
]

_SPELLINGS = (("queries", "documents"), ("queries", "items"), ("data_1", "data_2"), ("text_1", "text_2"))


class ScoreContent(msgspec.Struct):
    """A multimodal score input: OpenAI chat content parts, without a role."""

    content: list[dict[str, Any]]  # {"type": "text", "text": ...} | {"type": "image_url", ...} | ...


ScoreInput = str | ScoreContent
ScoreSide = ScoreInput | list[ScoreInput]


def _typed(item: ScoreInput, param: str) -> ScoreItem:
    return content_input(item.content, param) if isinstance(item, ScoreContent) else item


def plain(side: ScoreSide, param: str = "documents") -> ScoreInputs:
    """msgspec structs -> the typed values `retrieval.models.serving.scoring` takes (a text or a MultimodalInput)."""
    if isinstance(side, list):
        return [_typed(x, param) for x in side]
    return _typed(side, param)


class ScoringRequest(BasicRequest, kw_only=True):
    """vLLM's ScoringRequestMixin: fields shared by /score and /rerank."""

    use_activation: bool | None = None  # cross-encoders: sigmoid (or the checkpoint's activation_fn)
    max_tokens_per_query: int = 0  # cut queries to this many tokens; 0 = off
    max_tokens_per_doc: int = 0  # cut documents to this many tokens; 0 = off
    instruction: str | None = None  # score-template instruction (accepted; no score templates here)
    chat_template_kwargs: dict[str, Any] | None = None  # score-template options (accepted, unused)

    def score_options(self) -> ScoreOptions:
        return ScoreOptions(
            self.use_activation, self.token_options(), self.max_tokens_per_query, self.max_tokens_per_doc
        )


class ScoreRequest(ScoringRequest, kw_only=True):
    """Four equivalent spellings of the two sides; the first complete one wins."""

    queries: ScoreSide | UnsetType = UNSET  # side 1 (current docs)
    documents: ScoreSide | UnsetType = UNSET  # side 2 with `queries`
    items: ScoreSide | UnsetType = UNSET  # side 2, alternative name
    data_1: ScoreSide | UnsetType = UNSET  # side 1, older name
    data_2: ScoreSide | UnsetType = UNSET  # side 2, older name
    text_1: ScoreSide | UnsetType = UNSET  # side 1, legacy name
    text_2: ScoreSide | UnsetType = UNSET  # side 2, legacy name

    def sides(self) -> tuple[ScoreInputs, ScoreInputs]:
        for first, second in _SPELLINGS:
            a, b = getattr(self, first), getattr(self, second)
            if a is not UNSET and b is not UNSET:
                return plain(a, first), plain(b, second)
        missing = "documents" if self.queries is not UNSET else "queries"
        raise InvalidInputError(
            "Give both sides of the pairs: `queries` and `documents` (or `queries`/`items`, "
            "`data_1`/`data_2`, `text_1`/`text_2`)",
            param=missing,
        )


class ScoreData(msgspec.Struct, kw_only=True):
    index: int  # pair position in the request
    object: Literal["score"] = "score"
    score: float  # the pair's score


class ScoreResponse(msgspec.Struct, kw_only=True):
    id: str  # score-<request id>
    object: Literal["list"] = "list"
    created: int  # unix seconds
    model: str  # served model name
    data: list[ScoreData]  # one per pair, request order (not sorted)
    usage: UsageInfo  # tokens read


def _id(prefix: str, request_id: str | None) -> str:
    return f"{prefix}-{request_id}" if request_id else new_id(prefix)


def score_response(model: str, result: ScoreResult, request_id: str | None = None) -> ScoreResponse:
    data = [ScoreData(index=i, score=s) for i, s in enumerate(result.scores)]
    return ScoreResponse(
        id=_id("score", request_id), created=now(), model=model, data=data, usage=usage(result.prompt_tokens)
    )


class RerankRequest(ScoringRequest, kw_only=True):
    """Jina/Cohere-style rerank: one query against many documents."""

    query: ScoreInput  # text or {"content": [...]}
    documents: ScoreSide  # one or many documents
    top_n: int = 0  # keep the best N; 0 = all
    return_documents: bool = True  # Cohere: false omits `document` from results (vLLM always echoes)


class RerankDocument(msgspec.Struct):
    text: str | None = None  # the document, when it was text
    multi_modal: list[dict[str, Any]] | None = None  # its content parts, when it was multimodal


class RerankResult(msgspec.Struct, kw_only=True):
    index: int  # position in `documents`
    document: RerankDocument | UnsetType = UNSET  # echoed unless return_documents is false
    relevance_score: float  # the score; results are sorted by it, highest first


class RerankUsage(msgspec.Struct):
    prompt_tokens: int  # tokens read
    total_tokens: int  # same as prompt_tokens


class RerankResponse(msgspec.Struct, kw_only=True):
    id: str  # rerank-<request id>
    model: str  # served model name
    usage: RerankUsage  # tokens read
    results: list[RerankResult]  # sorted by relevance_score, descending


def _echo(doc: ScoreInput) -> RerankDocument:
    return RerankDocument(text=doc) if isinstance(doc, str) else RerankDocument(multi_modal=list(doc.content))


def rerank_response(model: str, ranked: list[tuple[int, float]], tokens: int, req: RerankRequest) -> RerankResponse:
    documents = req.documents if isinstance(req.documents, list) else [req.documents]
    results = [
        RerankResult(index=i, relevance_score=s, document=_echo(documents[i]) if req.return_documents else UNSET)
        for i, s in ranked
    ]
    return RerankResponse(
        id=_id("rerank", req.request_id), model=model, usage=RerankUsage(tokens, tokens), results=results
    )
