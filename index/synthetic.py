"""Seeded, clustered synthetic data for tests and benchmarks (never uniform noise).

Vectors are drawn around cluster centres so that nearest neighbours are meaningful, as in real
embeddings: dense vectors around ``n_clusters`` centres, multi-vector documents made of topic-specific
token prototypes plus shared "function word" prototypes, sparse documents with Zipf-like vocabularies.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from index.types import SparseItem

__all__ = ["clustered_dense", "clustered_multivector", "sparse_docs"]

F32 = npt.NDArray[np.float32]


def _unit(x: F32) -> F32:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clustered_dense(
    n: int, dim: int, n_queries: int, n_clusters: int = 100, spread: float = 0.5, seed: int = 0
) -> tuple[F32, F32]:
    """``(vectors float32 (n, dim), queries float32 (n_queries, dim))``, unit-norm, around shared centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim), dtype=np.float32)
    out = []
    for count in (n, n_queries):
        x = rng.standard_normal((count, dim), dtype=np.float32)
        x *= spread
        x += centres[rng.integers(0, n_clusters, count)]
        out.append(_unit(x))
    return out[0], out[1]


def clustered_multivector(
    n_docs: int,
    dim: int,
    n_queries: int,
    doc_len: tuple[int, int] = (64, 300),
    query_len: int = 32,
    n_topics: int | None = None,
    seed: int = 0,
) -> tuple[list[F32], list[F32]]:
    """``(documents, queries)``: lists of unit-norm float32 ``(m, dim)`` token matrices.

    Each document mixes tokens of one or two topics (80%) with shared common tokens (20%); each query
    draws tokens from the topics of a random target document, half of them near the document's own tokens.
    Values are float16-representable so float16 storage is lossless.
    """
    rng = np.random.default_rng(seed)
    n_topics = n_topics or max(4, n_docs // 20)
    topic_centre = rng.standard_normal((n_topics, dim), dtype=np.float32)
    protos = _unit(
        topic_centre[np.repeat(np.arange(n_topics), 20)]
        + rng.standard_normal((n_topics * 20, dim), dtype=np.float32)
    )
    common = _unit(rng.standard_normal((200, dim), dtype=np.float32))
    topics = rng.integers(0, n_topics, (n_docs, 2))
    docs = []
    for i in range(n_docs):
        m = int(rng.integers(doc_len[0], doc_len[1] + 1))
        own = protos[topics[i, rng.integers(0, 2, m)] * 20 + rng.integers(0, 20, m)]
        toks = np.where(rng.random((m, 1)) < 0.8, own, common[rng.integers(0, 200, m)])
        docs.append(_unit(toks + 0.3 * rng.standard_normal((m, dim), dtype=np.float32)))
    queries = []
    for t in rng.integers(0, n_docs, n_queries):
        half = query_len // 2
        near = docs[t][rng.integers(0, docs[t].shape[0], half)]
        topic = protos[
            topics[t, rng.integers(0, 2, query_len - half)] * 20 + rng.integers(0, 20, query_len - half)
        ]
        q = np.concatenate([near, topic]) + 0.2 * rng.standard_normal((query_len, dim), dtype=np.float32)
        queries.append(_unit(q))
    f16 = [d.astype(np.float16).astype(np.float32) for d in docs]
    return f16, queries


def sparse_docs(
    n: int, vocab: int, n_queries: int, doc_terms: int = 60, query_terms: int = 12, seed: int = 0
) -> tuple[list[SparseItem], list[SparseItem]]:
    """``(documents, queries)`` as ``{token_id: weight}`` dicts with Zipf-distributed token ids."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, vocab + 1, dtype=np.float64)
    cdf = np.cumsum(1.0 / ranks)
    cdf /= cdf[-1]
    out: list[list[SparseItem]] = []
    for count, terms in ((n, doc_terms), (n_queries, query_terms)):
        items = []
        for _ in range(count):
            toks = np.unique(np.minimum(np.searchsorted(cdf, rng.random(terms)), vocab - 1))
            weights = rng.uniform(0.01, 0.5, toks.size).astype(np.float32)
            items.append(dict(zip(toks.tolist(), weights.tolist(), strict=True)))
        out.append(items)
    return out[0], out[1]
