"""Candidate stage of two-stage MaxSim search: an IVF index of compressed codes over every token vector.

Two code kinds (``MultiVectorConfig.first_stage``): ``ivf_pq`` stores each token vector in a FAISS
``IndexIVFPQ`` (inner product, ``pq_m`` bytes per token); ``binary`` stores its sign bits in an
``IndexBinaryIVF`` (``dim / 8`` bytes, Hamming distance ``h`` read back as the similarity estimate
``cos(pi * h / dim)``, the angle estimate of sign random projections). Either way each code sits
under the *slot of its document*,
so ``remove_ids`` drops all of a document's tokens at once. For a query, each query vector fetches its
``token_k`` nearest token vectors; a document's approximate score is the sum over query vectors of its
best retrieved token score, with the ``token_k``-th score imputed where it had none (the XTR
"missing similarity" estimate, an upper bound on the true per-vector maximum). The best documents by that
estimate are then reranked with exact MaxSim over their stored float16 vectors.

Why this candidate stage: it reuses FAISS (no new code to trust), supports removal and id-selector
filtering natively, and adds only PQ code bytes + 8 id bytes per token. MUVERA encodings and PLAID
centroid interaction were not implemented; ``benchmarks/bench_index_multivector.py`` measures recall,
speed-up over exact MaxSim and bytes per token of this design, sweeping the rerank depth.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import faiss as _faiss
import numpy as np
import numpy.typing as npt

from index.config import MultiVectorConfig
from index.errors import IndexConfigError
from index.token_store import TokenStore

faiss: Any = _faiss  # faiss's bundled stubs lag its SWIG API (SearchParameters*, DirectMap, ...)

__all__ = ["FASTSCAN_MIN_SAMPLE", "TokenCandidates", "sign_codes"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
_ADD_CHUNK = 1 << 18  # token rows converted to float32 per add call
_MIN_POINTS_PER_LIST = 39
_KMEANS_ITERATIONS = 10  # candidate quality barely moves past 10; training time scales linearly
FASTSCAN_MIN_SAMPLE = 16 * _MIN_POINTS_PER_LIST  # rows 4-bit (16-centroid) sub-quantizers need to train on


def _pq_m(config: MultiVectorConfig, dim: int) -> int:
    want = config.pq_m if config.pq_m is not None else max(1, dim // 8)
    return max(m for m in range(1, want + 1) if dim % m == 0)


def _pq_ivf(config: MultiVectorConfig, dim: int, nlist: int, n: int) -> tuple[Any, int]:
    """An untrained inner-product IVF-PQ and the sample size to train it on."""
    nbits = int(np.clip(math.floor(math.log2(max(2, n // _MIN_POINTS_PER_LIST))), 1, 8))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFPQ(quantizer, dim, nlist, _pq_m(config, dim), nbits, faiss.METRIC_INNER_PRODUCT)
    ivf.own_fields = True
    quantizer.this.disown()
    ivf.cp.niter = ivf.pq.cp.niter = _KMEANS_ITERATIONS
    return ivf, max(nlist, 1 << nbits) * 64


def _fastscan_m(config: MultiVectorConfig, dim: int) -> int:
    """4-bit sub-quantizers of a fast-scan code of ``pq_m`` bytes (two per byte; the largest count <= 2 * bytes
    dividing ``dim``)."""
    want = 2 * _pq_m(config, dim)
    return max(m for m in range(1, want + 1) if dim % m == 0)


def _fastscan_ivf(config: MultiVectorConfig, dim: int, nlist: int) -> tuple[Any, int]:
    """An untrained inner-product IVF-PQ *fast-scan* index (4-bit codes, lists scanned with SIMD look-up tables)
    and the sample size to train it on. Same bytes per token as the 8-bit ``_pq_ivf`` (twice the sub-quantizers
    of half the width), several times faster to scan."""
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, _fastscan_m(config, dim), 4, faiss.METRIC_INNER_PRODUCT)
    ivf.own_fields = True
    quantizer.this.disown()
    ivf.cp.niter = ivf.pq.cp.niter = _KMEANS_ITERATIONS
    return ivf, max(nlist, FASTSCAN_MIN_SAMPLE // 64) * 64


def _binary_ivf(dim: int, nlist: int) -> tuple[Any, int]:
    """An untrained Hamming IVF over ``dim``-bit sign codes and the sample size to train it on."""
    if dim % 8:
        raise IndexConfigError("first_stage", "ivf_pq when dim is not a multiple of 8", f"binary with dim {dim}")
    quantizer = faiss.IndexBinaryFlat(dim)
    ivf = faiss.IndexBinaryIVF(quantizer, dim, nlist)
    ivf.own_fields = True
    quantizer.this.disown()
    ivf.cp.niter = _KMEANS_ITERATIONS
    return ivf, nlist * 64


def sign_codes(x: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """uint8 (n, dim / 8): the sign bit of every component, packed (bit set where the value is > 0).

    >>> sign_codes(np.array([[1.0, -1, 0, 2, -3, 4, 5, -6]], np.float32))
    array([[150]], dtype=uint8)
    """
    return np.packbits(np.asarray(x) > 0, axis=1)


class TokenCandidates:
    """Token-level IVF (PQ or binary codes) over a :class:`TokenStore`, ids = document slots."""

    def __init__(self, index: faiss.Index, trained_on: int) -> None:
        self.index = index  # faiss IndexIVFPQ (inner product) or IndexBinaryIVF (Hamming), ids = document slots
        self.trained_on = trained_on  # token vectors in the store when it was trained
        self.binary = isinstance(index, faiss.IndexBinary)  # True for sign codes searched by Hamming distance

    def _codes(self, x: npt.NDArray[np.floating]) -> npt.NDArray[Any]:
        return sign_codes(x) if self.binary else np.asarray(x, np.float32)

    @classmethod
    def build(cls, config: MultiVectorConfig, store: TokenStore, slots: I64, seed: int = 1234) -> TokenCandidates:
        """Train on a sample of the store's tokens and add the tokens of ``slots``."""
        tokens, dim = store.tokens, store.dim
        n = tokens.shape[0]
        nlist = max(1, min(config.nlist or round(math.sqrt(n)), n // _MIN_POINTS_PER_LIST))
        binary = config.first_stage == "binary"
        ivf, take = _binary_ivf(dim, nlist) if binary else _pq_ivf(config, dim, nlist, n)
        rows = np.sort(np.random.default_rng(seed).choice(n, size=min(n, take), replace=False))
        out = cls(ivf, n)
        ivf.train(out._codes(tokens[rows]))
        ivf.nprobe = min(nlist, config.nprobe)
        out.add_from(store, slots)
        return out

    def add_from(self, store: TokenStore, slots: I64) -> None:
        """Index the token vectors of ``slots`` (already in ``store``), chunked to bound memory."""
        if slots.size == 0:
            return
        bounds = np.concatenate([[0], np.cumsum(store.lengths(slots))])
        cuts = np.searchsorted(bounds, np.arange(0, bounds[-1], _ADD_CHUNK))
        for a, b in zip(cuts, [*cuts[1:], slots.size], strict=True):
            if b > a:
                tokens, offsets = store.gather(slots[a:b])
                ids = np.repeat(slots[a:b], np.diff(offsets))
                self.index.add_with_ids(self._codes(tokens), ids)

    def reindex(self, store: TokenStore, slots: I64) -> None:
        """Drop every code and index the tokens of ``slots`` again, keeping the trained quantizers (after the
        store was compacted and its slots renumbered)."""
        self.index.reset()
        self.add_from(store, slots)

    def remove(self, slots: I64) -> None:
        """Drop every token of the documents in ``slots``."""
        if slots.size:
            self.index.remove_ids(faiss.IDSelectorBatch(slots))

    def code_bytes(self) -> int:
        """Bytes of the per-token codes and ids alone (what grows with the corpus)."""
        return int(self.index.ntotal * (self.index.code_size + 8))

    def nbytes(self) -> int:
        """Bytes of codes, ids and centroids held by the IVF index."""
        ivf = self.index
        if self.binary:
            return int(ivf.ntotal * (ivf.code_size + 8) + ivf.nlist * ivf.code_size)
        return int(ivf.ntotal * (ivf.code_size + 8) + ivf.nlist * ivf.d * 4 + ivf.pq.M * ivf.pq.ksub * ivf.pq.dsub * 4)

    def depth(self, token_k: int, n_rerank: int) -> tuple[int, int]:
        """``(token_k, n_rerank)`` for a search of this index, from the configured ones and its size.

        The more tokens a list holds, the more of them sit within any similarity band of a query vector, so a fixed
        ``token_k`` covers fewer distinct documents (near-duplicates crowd it): each query vector fetches at least
        half a list's worth (``ntotal / nlist / 2``), and the rerank covers at least one document per 10 hits.
        Measured on the scale set (25M tokens x 128, 20 noisy copies of each document, 60 queries): recall@10 0.923
        with ``token_k`` 512 and 100 reranked, 0.957 with 2,048 and 100, 0.982 with 2,048 and 200; on SciFact's
        1.24M tokens the rule changes nothing (lists of ~1,100: 557 hits, 100 reranked).

        >>> stage = TokenCandidates(faiss.IndexIVFFlat(faiss.IndexFlatIP(4), 4, 10), 0)
        >>> stage.depth(512, 100)
        (512, 100)
        >>> stage.index.ntotal = 50_000
        >>> stage.depth(512, 100)
        (2500, 250)
        """
        per_list = int(self.index.ntotal) // max(1, int(self.index.nlist))
        token_k = max(token_k, per_list // 2)
        return token_k, max(n_rerank, token_k // 10)

    def candidates(
        self,
        queries: list[F32],
        token_k: int,
        n_docs: int,
        allowed: I64 | None = None,
        live: npt.NDArray[np.bool_] | None = None,
    ) -> list[I64]:
        """For each query (float32 (m_i, dim)), the ``n_docs`` best document slots by estimated MaxSim.

        ``allowed``: None, or int64 slots a candidate must be one of. ``live``: None, or bool (n_slots,), False for
        slots whose codes are still indexed but whose document is gone (codes removed lazily): never proposed.
        """
        flat = np.concatenate(queries)
        if self.binary:
            scores, labels = self._search_binary(flat, token_k, allowed)
        else:
            sel = None if allowed is None else faiss.IDSelectorBatch(allowed)
            params = faiss.SearchParametersIVF(sel=sel, nprobe=self.index.nprobe)
            scores, labels = self.index.search(flat, token_k, params=params)
        if live is not None:
            labels = np.where(live[np.maximum(labels, 0)] & (labels >= 0), labels, -1)
        cuts = np.cumsum([0, *(q.shape[0] for q in queries)])
        return [_best_docs(scores[a:b], labels[a:b], n_docs) for a, b in itertools.pairwise(cuts)]

    def _search_binary(self, flat: F32, token_k: int, allowed: I64 | None) -> tuple[F32, I64]:
        """Hamming search (FAISS's binary IVF takes no id selector: ``allowed`` slots filter afterwards)."""
        dist, labels = self.index.search(sign_codes(flat), token_k)
        if allowed is not None:
            labels = np.where(np.isin(labels, allowed), labels, -1)
        sims = np.cos(np.pi * dist.astype(np.float32) / self.index.d).astype(np.float32)
        return sims, labels


def _best_docs(scores: F32, labels: I64, n_docs: int) -> I64:
    """Document slots ranked by the imputed per-vector-max sum, best ``n_docs`` (unordered)."""
    valid = labels >= 0
    if not valid.any():
        return np.empty(0, np.int64)
    docs, inverse = np.unique(labels[valid], return_inverse=True)
    floor = np.where(valid, scores, np.inf).min(axis=1, keepdims=True)
    floor[~np.isfinite(floor)] = 0.0
    est = np.repeat(floor, docs.size, axis=1)
    rows = np.nonzero(valid)[0]
    np.maximum.at(est, (rows, inverse), scores[valid])
    total = est.sum(axis=0)
    if docs.size <= n_docs:
        return docs
    return docs[np.argpartition(-total, n_docs - 1)[:n_docs]]
