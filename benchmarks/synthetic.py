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
    seed: int = 0,
) -> tuple[list[F32], list[F32]]:
    """``(documents, queries)``: lists of unit-norm float32 ``(m, dim)`` token matrices.

    Topics own 100 token prototypes each; a document picks a topic and a private vocabulary of 24 of its
    prototypes, and draws 80% of its tokens from that vocabulary and 20% from 200 shared "function word"
    prototypes, plus noise. A query draws its vectors from the vocabulary of a random target document, so
    documents sharing more of that vocabulary score higher. Values are float16-representable.
    """
    rng = np.random.default_rng(seed)
    noise = 0.5 / np.sqrt(dim)  # per-coordinate sigma: noise vectors of norm ~0.5 around unit prototypes
    n_topics = max(2, n_docs // 50)
    centre = rng.standard_normal((n_topics, dim), dtype=np.float32)
    protos = _unit(np.repeat(centre, 100, axis=0) + rng.standard_normal((n_topics * 100, dim), dtype=np.float32))
    common = _unit(rng.standard_normal((200, dim), dtype=np.float32))
    vocab = rng.integers(0, n_topics, (n_docs, 1)) * 100 + rng.integers(0, 100, (n_docs, 24))
    docs = []
    for i in range(n_docs):
        m = int(rng.integers(doc_len[0], doc_len[1] + 1))
        own = protos[vocab[i, rng.integers(0, 24, m)]]
        toks = np.where(rng.random((m, 1)) < 0.8, own, common[rng.integers(0, 200, m)])
        docs.append(_unit(toks + noise * rng.standard_normal((m, dim), dtype=np.float32)))
    queries = []
    for t in rng.integers(0, n_docs, n_queries):
        q = protos[vocab[t, rng.integers(0, 24, query_len)]]
        queries.append(_unit(q + noise * rng.standard_normal((query_len, dim), dtype=np.float32)))
    return [d.astype(np.float16).astype(np.float32) for d in docs], queries


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
