"""Score and rerank text pairs with vLLM's semantics, chosen by the kind of model.

- cross-encoder (a classifier with one label): query and document encoded together, `score` task
  (sigmoid of the logit unless the checkpoint names another activation; raw with `use_activation=False`);
- late-interaction (ColBERT-style adapters): each side encoded with `token_embed` (query / document mode),
  score = MaxSim summed over query tokens, in float32;
- bi-encoder (any `embed` model): cosine of the two embeddings.

Cardinality: 1:1, 1:N (the query is broadcast) or N:N (zipped). One implementation: `plan_scores` validates
and builds the encode calls, the engine runs them (`Engine.run` for servers, `Engine.run_sync` offline), and
`finish_scores` does the math; `score` / `score_sync` are the two calling styles of that one path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch.nn.functional as F

from encoder import (
    EncodeCall,
    EncodeResult,
    Engine,
    InvalidInputError,
    MultimodalInput,
    PoolingParams,
    TextPair,
    TokenOptions,
    UnsupportedTaskError,
)
from poolers.maxsim import maxsim

__all__ = [
    "Reranked",
    "ScoreInputs",
    "ScoreItem",
    "ScoreKind",
    "ScoreOptions",
    "ScorePlan",
    "ScoreResult",
    "as_items",
    "finish_scores",
    "plan_scores",
    "rank",
    "rerank",
    "score",
    "score_kind",
    "score_sync",
    "to_text",
]

ScoreKind = Literal["cross-encoder", "bi-encoder", "late-interaction"]
ScoreItem = str | MultimodalInput  # a text, or content parts (typed by the API layer)
ScoreInputs = ScoreItem | Sequence[ScoreItem]  # one item (broadcast) or a list of items


@dataclass(frozen=True, slots=True)
class ScoreOptions:
    """Per-request scoring options (vLLM's ScoreRequest fields)."""

    use_activation: bool | None = None  # cross-encoders: activation on the logit; None = model default
    tokens: TokenOptions = field(default_factory=TokenOptions)  # truncation and special tokens
    max_tokens_per_query: int = 0  # cut each query to this many tokens (character boundary); 0 = off
    max_tokens_per_doc: int = 0  # cut each document to this many tokens; 0 = off


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """Scores in pair order and the number of tokens encoded (usage)."""

    scores: list[float]  # one float per pair, request order
    prompt_tokens: int  # every token the model read


@dataclass(frozen=True, slots=True)
class ScorePlan:
    """The encode calls one scoring request needs, and how to combine their outputs."""

    kind: ScoreKind  # which semantics
    calls: list[EncodeCall]  # run as one job; outputs go to `finish_scores` in the same order
    n_pairs: int  # number of scores to produce


def score_kind(engine: Engine) -> ScoreKind:
    """How `engine`'s model scores pairs; a model with none of the three is vLLM's 501 "Score API" error."""
    if engine.late_interaction:
        return "late-interaction"
    if engine.supports("score"):
        return "cross-encoder"
    if engine.supports("embed"):
        return "bi-encoder"
    raise UnsupportedTaskError("The model does not support Score API")


def _side(engine: Engine, items: list[ScoreItem], limit: int, side: str) -> list[ScoreItem]:
    """Text items cut to `limit` tokens; items with images kept whole when the model takes images."""
    param = "queries" if side == "query" else "documents"
    if engine.accepts_images:
        texts = [x if isinstance(x, str) else x.text() for x in items if isinstance(x, str) or x.is_text_only]
        cut = iter(_cut(engine, texts, limit, side))
        return [next(cut) if isinstance(x, str) or x.is_text_only else x for x in items]
    return list(_cut(engine, [to_text(x, engine.info.architecture, param) for x in items], limit, side))


def to_text(item: ScoreItem, architecture: str, param: str) -> str:
    """A score input as text: a string as is, content parts joined by newlines when they are all text."""
    if isinstance(item, str):
        return item
    if not item.is_text_only:
        raise InvalidInputError(f"MultiModalParam is not supported for {architecture}", param=param)
    return item.text()


def as_items(value: ScoreInputs) -> list[ScoreItem]:
    """vLLM wraps a scalar side into a one-element list."""
    if isinstance(value, str | MultimodalInput):
        return [value]
    return list(value)


def _check_lengths(n_queries: int, n_docs: int) -> None:
    """vLLM's `_validate_score_input_lens`, same order and texts."""
    if n_queries > 1 and n_queries != n_docs:
        raise InvalidInputError("Input lengths must be either 1:1, 1:N or N:N", param="documents")
    if n_queries == 0:
        raise InvalidInputError("At least one text element must be given", param="queries")
    if n_docs == 0:
        raise InvalidInputError("At least one text_pair element must be given", param="documents")


def _cut(engine: Engine, texts: list[str], limit: int, side: str) -> list[str]:
    """Cut each text after its first `limit` tokens, at a character boundary (offset mapping); 0 = keep."""
    name = f"max_tokens_per_{side}"
    if limit == 0:
        return texts
    max_len = engine.info.max_model_len
    if limit < 0 or limit >= max_len:
        raise InvalidInputError(f"{name} must be less than max_model_len ({max_len})", param=name)
    return engine.cut_to_tokens(texts, limit)


def plan_scores(engine: Engine, queries: ScoreInputs, documents: ScoreInputs, options: ScoreOptions) -> ScorePlan:
    """Validate cardinality and inputs, then decide what to encode (no model work happens here)."""
    queries, documents = as_items(queries), as_items(documents)
    _check_lengths(len(queries), len(documents))
    q = _side(engine, queries, options.max_tokens_per_query, "query")
    d = _side(engine, documents, options.max_tokens_per_doc, "doc")
    kind = score_kind(engine)
    tok = options.tokens
    if kind == "cross-encoder":
        pairs = [TextPair(qi, di) for qi, di in _broadcast(q, d)]
        params = PoolingParams(task="score", use_activation=options.use_activation)
        return ScorePlan(kind, [EncodeCall(pairs, params, tok)], len(d))
    if kind == "late-interaction":
        calls = [
            EncodeCall(q, PoolingParams(task="token_embed", embedding_mode="query"), tok),
            EncodeCall(d, PoolingParams(task="token_embed", embedding_mode="document"), tok),
        ]
        return ScorePlan(kind, calls, len(d))
    return ScorePlan(kind, [EncodeCall([*q, *d], PoolingParams(task="embed"), tok)], len(d))


def _broadcast(q: Sequence[Any], d: Sequence[Any]) -> list[tuple[Any, Any]]:
    """1:N repeats the single query; N:N zips."""
    return [(q[0] if len(q) == 1 else q[i], doc) for i, doc in enumerate(d)]


def finish_scores(plan: ScorePlan, results: Sequence[EncodeResult]) -> ScoreResult:
    """Combine the encode outputs of `plan.calls` (same order) into one float per pair."""
    tokens = sum(sum(r.prompt_tokens) for r in results)
    n = plan.n_pairs
    if plan.kind == "cross-encoder":
        return ScoreResult([float(t.reshape(-1)[0]) for t in results[0].outputs], tokens)
    if plan.kind == "late-interaction":
        pairs = _broadcast(results[0].outputs, results[1].outputs)
        return ScoreResult([float(maxsim(qv, dv[None])[0]) for qv, dv in pairs], tokens)
    out = results[0].outputs
    pairs = _broadcast(out[: len(out) - n], out[len(out) - n :])
    return ScoreResult([float(F.cosine_similarity(a.float(), b.float(), dim=0)) for a, b in pairs], tokens)


async def score(
    engine: Engine,
    queries: ScoreInputs,
    documents: ScoreInputs,
    options: ScoreOptions | None = None,
) -> ScoreResult:
    """Score pairs through the engine's shared batcher (servers); room for one sequence per document (every kind
    encodes at least that many) is reserved before the pairs are planned and tokenised, so an overloaded batcher
    refuses at once."""
    with engine.batcher.reserve(len(as_items(documents))) as held:
        plan = await asyncio.to_thread(plan_scores, engine, queries, documents, options or ScoreOptions())
        return finish_scores(plan, await engine.run(plan.calls, held))


def score_sync(
    engine: Engine,
    queries: ScoreInputs,
    documents: ScoreInputs,
    options: ScoreOptions | None = None,
) -> ScoreResult:
    """Score pairs in the calling thread (offline `LLM.score`)."""
    plan = plan_scores(engine, queries, documents, options or ScoreOptions())
    return finish_scores(plan, engine.run_sync(plan.calls))


def rank(scores: Sequence[float], top_n: int = 0) -> list[tuple[int, float]]:
    """(index, score) sorted by score, highest first (stable on ties); `top_n` > 0 keeps that many.

    >>> rank([0.1, 0.9, 0.5], top_n=2)
    [(1, 0.9), (2, 0.5)]
    """
    if top_n < 0:
        raise InvalidInputError("top_n must be greater than or equal to 0", param="top_n")
    ordered = sorted(enumerate(scores), key=lambda pair: -pair[1])
    return ordered[:top_n] if 0 < top_n < len(ordered) else ordered


@dataclass(frozen=True, slots=True)
class Reranked:
    """A rerank answer: (document index, score) best first, the documents as given, and usage."""

    ranked: list[tuple[int, float]]  # sorted by score, descending, cut to top_n
    documents: list[ScoreItem]  # the request's documents, request order
    prompt_tokens: int  # every token the model read


async def rerank(
    engine: Engine,
    query: ScoreItem,
    documents: ScoreInputs,
    top_n: int = 0,
    options: ScoreOptions | None = None,
) -> Reranked:
    """Score `query` against every document (1:N) and sort; `top_n` 0 keeps all."""
    docs = as_items(documents)
    rank([], top_n)  # validate top_n before any model work
    result = await score(engine, [query], docs, options)
    return Reranked(rank(result.scores, top_n), docs, result.prompt_tokens)
