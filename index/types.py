"""Shared vocabulary of the index layer: closed choices, the search result and the missing-hit markers."""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_METRIC",
    "MISSING_ID",
    "MISSING_SCORE",
    "DenseKind",
    "DeviceChoice",
    "FirstStage",
    "IndexFamily",
    "Metric",
    "MultiVectorKind",
    "ScoringDType",
    "SearchResult",
    "SparseItem",
]

DenseKind = Literal["auto", "flat", "hnsw", "ivf_flat", "ivf_pq", "ivf_sq8", "factory"]
"""How a :class:`~index.dense.DenseIndex` organises vectors. ``auto`` picks by collection size."""

MultiVectorKind = Literal["auto", "exact", "two_stage", "compressed"]
"""``exact`` scans every document with MaxSim; ``two_stage`` retrieves candidates then reranks exactly;
``compressed`` does the same with only compressed token codes in RAM and the float16 vectors in a memory-mapped
file on disk (read for the candidates a query rescores)."""

FirstStage = Literal["ivf_pq", "binary"]
"""Two-stage candidate codes per token: ``ivf_pq`` (product-quantised, ``pq_m`` bytes) or ``binary`` (sign bits,
``dim / 8`` bytes, Hamming distance); candidates are always rescored with exact MaxSim over float16."""

ScoringDType = Literal["float32", "bfloat16"]
"""Matmul dtype of exact MaxSim scans (max and sum stay float32)."""

Metric = Literal["ip", "cosine"]
"""Similarity: inner product, or cosine (vectors L2-normalised on add and on search)."""

DEFAULT_METRIC: Metric = "cosine"
"""The one default similarity of every dense index (config, exact oracle, a collection's `index.dense`): cosine
ranks like inner product for normalised models and stays right for the others."""

DeviceChoice = Literal["auto", "cpu"]
"""``auto`` moves FAISS indexes to a GPU when the installed faiss reports one; ``cpu`` never does."""

IndexFamily = Literal[
    "dense", "multivector", "sparse", "bm25", "exact_dense", "exact_multivector", "exact_sparse", "exact_bm25"
]
"""The ``kind`` recorded in a saved index's manifest."""

SparseItem = dict[int, float]
"""One sparse vector: vocabulary token id -> weight (e.g. BGE-M3 lexical weights)."""

MISSING_ID: int = -1
"""Id placed in a result slot when fewer than ``k`` hits exist."""

MISSING_SCORE: float = float("-inf")
"""Score placed in a result slot when fewer than ``k`` hits exist (always ``-inf``, every family)."""


class SearchResult(NamedTuple):
    """The answer of every ``search``: row ``i`` holds the hits of query ``i``, best first.

    Unpacks as ``scores, ids = index.search(...)``.
    """

    scores: npt.NDArray[np.float32]  # float32 (n_queries, k); MISSING_SCORE where fewer than k hits
    ids: npt.NDArray[np.int64]  # int64 (n_queries, k) external ids; MISSING_ID where fewer than k hits
