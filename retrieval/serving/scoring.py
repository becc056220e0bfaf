"""Score and rerank text pairs with vLLM's semantics, chosen by the kind of model.

- cross-encoder (a classifier with one label): query and document encoded together, `score` task
  (sigmoid of the logit unless the checkpoint names another activation; raw with `use_activation=False`);
- late-interaction (ColBERT-style adapters): each side encoded with `token_embed` (query / document mode),
  score = MaxSim summed over query tokens, in float32;
- bi-encoder (any `embed` model): cosine of the two embeddings.

Cardinality: 1:1, 1:N (the query is broadcast) or N:N (zipped). The core is split into `plan_scores`
(validate, build encode calls) and `finish_scores` (math), so `score` (async, servers) and `score_sync`
(offline `LLM.score`) share everything but the encode call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch.nn.functional as F

from encoder import (
    EncodeResult,
    Engine,
    InvalidInputError,
    PoolingParams,
    Task,
    TokenOptions,
    UnsupportedTaskError,
)
from encoder.tokenizer import Prompt
from encoder.types import TextPair
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
    "rerank_sync",
    "score",
    "score_kind",
    "score_sync",
    "to_text",
]

ScoreKind = Literal["cross-encoder", "bi-encoder", "late-interaction"]
ScoreItem = str | Sequence[Mapping[str, Any]]  # a text, or OpenAI chat content parts ({"type": "text", ...})
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
class _Call:
    prompts: list[Prompt | TextPair]  # what to encode
    params: PoolingParams  # with which task


@dataclass(frozen=True, slots=True)
class ScorePlan:
    """The encode calls one scoring request needs, and how to combine their outputs."""

    kind: ScoreKind  # which semantics
    calls: list[_Call]  # run in order; outputs go to `finish_scores` in the same order
    n_pairs: int  # number of scores to produce


def score_kind(engine: Engine) -> ScoreKind:
    """How `engine`'s model scores pairs; a model with none of the three is vLLM's 501 "Score API" error."""
    if engine.adapter.late_interaction:
        return "late-interaction"
    if _supports(engine, "score"):
        return "cross-encoder"
    if _supports(engine, "embed"):
        return "bi-encoder"
    raise UnsupportedTaskError("The model does not support Score API")


def _supports(engine: Engine, task: Task) -> bool:
    """Whether the adapter accepts `task` (adapters may narrow the task table, e.g. by num_labels)."""
    try:
        engine.adapter.check_task(task)
    except UnsupportedTaskError:
        return False
    return True


def to_text(item: ScoreItem, architecture: str, param: str) -> str:
    """A score input as text: a string as is, content parts joined by newlines when they are all text."""
    if isinstance(item, str):
        return item
    texts = []
    for part in item:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidInputError(f"MultiModalParam is not supported for {architecture}", param=param)
        texts.append(part["text"])
    return "\n".join(texts)


def as_items(value: ScoreInputs) -> list[ScoreItem]:
    """vLLM wraps a scalar side into a one-element list: a string or one list of content parts."""
    if isinstance(value, str) or (value and all(isinstance(v, Mapping) for v in value)):
        return [value]  # type: ignore[list-item]
    return list(value)  # type: ignore[arg-type]


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
    # The HF tokenizer's truncation state is shared with the engine's tokenising thread: hold its lock.
    with engine.adapter.tokenizer.lock:
        enc = engine.adapter.tokenizer.hf(texts, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    return [t if len(off) <= limit else t[: off[limit - 1][1]] for t, off in zip(texts, offsets, strict=True)]


def plan_scores(engine: Engine, queries: ScoreInputs, documents: ScoreInputs, options: ScoreOptions) -> ScorePlan:
    """Validate cardinality and inputs, then decide what to encode (no model work happens here)."""
    queries, documents = as_items(queries), as_items(documents)
    _check_lengths(len(queries), len(documents))
    arch = engine.info.architecture
    q = _cut(engine, [to_text(x, arch, "queries") for x in queries], options.max_tokens_per_query, "query")
    d = _cut(engine, [to_text(x, arch, "documents") for x in documents], options.max_tokens_per_doc, "doc")
    kind = score_kind(engine)
    if kind == "cross-encoder":
        pairs: list[Prompt | TextPair] = [TextPair(qi, di) for qi, di in _broadcast(q, d)]
        params = PoolingParams(task="score", use_activation=options.use_activation)
        return ScorePlan(kind, [_Call(pairs, params)], len(d))
    if kind == "late-interaction":
        calls = [
            _Call(list(q), PoolingParams(task="token_embed", embedding_mode="query")),
            _Call(list(d), PoolingParams(task="token_embed", embedding_mode="document")),
        ]
        return ScorePlan(kind, calls, len(d))
    return ScorePlan(kind, [_Call([*q, *d], PoolingParams(task="embed"))], len(d))


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
    """Score pairs through the engine's shared batcher (servers)."""
    options = options or ScoreOptions()
    plan = await asyncio.to_thread(plan_scores, engine, queries, documents, options)  # may tokenise
    results = await asyncio.gather(*(engine.encode(c.prompts, c.params, options.tokens) for c in plan.calls))  # type: ignore[arg-type]
    return finish_scores(plan, results)


def score_sync(
    engine: Engine,
    queries: ScoreInputs,
    documents: ScoreInputs,
    options: ScoreOptions | None = None,
) -> ScoreResult:
    """Score pairs in the calling thread (offline `LLM.score`)."""
    options = options or ScoreOptions()
    plan = plan_scores(engine, queries, documents, options)
    outputs = [engine.encode_sync(c.prompts, c.params, options.tokens) for c in plan.calls]  # type: ignore[arg-type]
    return finish_scores(plan, outputs)


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


def rerank_sync(
    engine: Engine,
    query: ScoreItem,
    documents: ScoreInputs,
    top_n: int = 0,
    options: ScoreOptions | None = None,
) -> Reranked:
    """`rerank` in the calling thread (offline use)."""
    docs = as_items(documents)
    rank([], top_n)
    result = score_sync(engine, [query], docs, options)
    return Reranked(rank(result.scores, top_n), docs, result.prompt_tokens)
