"""Construction of FAISS indexes for :class:`~index.dense.DenseIndex`: kinds, the ``auto`` policy, training.

All indexes use inner product (cosine = inner product on normalised vectors). Two id regimes:

* *id-native* (flat via ``IndexIDMap2``, every IVF variant): FAISS stores our slot numbers as ids and
  removes them physically with ``remove_ids``;
* *positional* (HNSW and any index without ``remove_ids``): slot ``i`` is the ``i``-th added vector and
  removal is a tombstone filtered at search time until compaction rebuilds the index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import faiss as _faiss
import numpy as np
import numpy.typing as npt

from index.config import DenseConfig
from index.errors import IndexConfigError

faiss: Any = _faiss  # faiss's bundled stubs lag its SWIG API (SearchParameters*, DirectMap, ...)

__all__ = ["Built", "build_index", "default_nprobe", "resolve_kind"]

_MIN_POINTS_PER_LIST = 39  # FAISS asks for >= 39 training points per centroid
_TRAIN_POINTS_PER_LIST = 64  # training sample size per IVF list
_KMEANS_ITERATIONS = 10  # FAISS default 25; 1M x 384 benchmark: recall@10 0.9998 at nprobe 31 with 10


@dataclass
class Built:
    """A fresh, trained, empty FAISS index and how ids work in it."""

    index: faiss.Index  # the CPU index, ready for add
    kind: str  # resolved kind: "flat", "hnsw", "ivf_flat", "ivf_pq", "ivf_sq8" or "factory"
    positional: bool  # True when slots are positions and removal needs tombstones
    trained_on: int  # vectors the training saw (0 when no training was needed)


def resolve_kind(config: DenseConfig, n: int) -> str:
    """The concrete kind for a collection of ``n`` vectors (``auto`` picks by size)."""
    if config.kind != "auto":
        return config.kind
    if n < config.auto_flat_max:
        return "flat"
    return "ivf_flat" if n < config.auto_ivf_flat_max else "ivf_sq8"


def _nlist(config: DenseConfig, n: int) -> int:
    want = config.nlist if config.nlist is not None else round(math.sqrt(n))
    return max(1, min(want, n // _MIN_POINTS_PER_LIST))


def default_nprobe(config: DenseConfig, nlist: int) -> int:
    """Lists probed per query: the configured value, else ``max(8, nlist // 32)``, capped at ``nlist``.

    At 1M x 384 (nlist 1000) the default 31 measured recall@10 0.9998 at ~19x the exact batch-64 rate.
    """
    return min(nlist, config.nprobe if config.nprobe is not None else max(8, nlist // 32))


def _pq_m(config: DenseConfig, dim: int) -> int:
    if config.pq_m is not None:
        if dim % config.pq_m:
            raise IndexConfigError("pq_m", f"a divisor of dim {dim}", str(config.pq_m))
        return config.pq_m
    return max(m for m in range(1, max(1, dim // 4) + 1) if dim % m == 0)


def _ivf(config: DenseConfig, kind: str, dim: int, n: int) -> faiss.Index:
    nlist = _nlist(config, n)
    quantizer = faiss.IndexFlatIP(dim)
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "ivf_flat":
        ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, ip)
    elif kind == "ivf_sq8":
        ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, ip)
    else:
        nbits = int(np.clip(math.floor(math.log2(max(2, n // _MIN_POINTS_PER_LIST))), 1, 8))
        ivf = faiss.IndexIVFPQ(quantizer, dim, nlist, _pq_m(config, dim), nbits, ip)
    ivf.own_fields = True
    quantizer.this.disown()
    ivf.cp.niter = _KMEANS_ITERATIONS
    if kind == "ivf_pq":
        ivf.pq.cp.niter = _KMEANS_ITERATIONS
    ivf.nprobe = default_nprobe(config, nlist)
    return ivf


def _base(config: DenseConfig, kind: str, dim: int, n: int) -> faiss.Index:
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = config.ef_construction
        hnsw.hnsw.efSearch = config.ef_search
        return hnsw
    if kind == "factory":
        return _factory(config, dim)
    if kind in ("ivf_flat", "ivf_pq", "ivf_sq8"):
        return _ivf(config, kind, dim, n)
    raise IndexConfigError("kind", "auto|flat|hnsw|ivf_flat|ivf_pq|ivf_sq8|factory", kind)


def _factory(config: DenseConfig, dim: int) -> faiss.Index:
    try:
        index = faiss.index_factory(dim, str(config.factory), faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as e:
        raise IndexConfigError("factory", "a valid FAISS index_factory string", repr(config.factory)) from e
    if is_positional(index) or faiss.try_extract_index_ivf(index) is not None:
        return index
    return index if isinstance(index, faiss.IndexIDMap) else faiss.IndexIDMap2(index)


def is_positional(index: faiss.Index) -> bool:
    """True for indexes whose ids are insertion positions (no ``add_with_ids``/``remove_ids``): HNSW."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexPreTransform) else index
    return isinstance(inner, faiss.IndexHNSW | faiss.IndexNSG)


def build_index(config: DenseConfig, dim: int, train: npt.NDArray[np.float32], seed: int = 1234) -> Built:
    """Build and train an empty index sized for ``train``: float32 (n, dim), the vectors about to be added."""
    n = int(train.shape[0])
    kind = resolve_kind(config, n)
    index = _base(config, kind, dim, n)
    trained_on = 0
    if not index.is_trained:
        ivf = faiss.try_extract_index_ivf(index)
        lists = ivf.nlist if ivf is not None else 256
        take = min(n, lists * _TRAIN_POINTS_PER_LIST)
        rows = np.random.default_rng(seed).choice(n, size=take, replace=False) if take < n else slice(None)
        index.train(np.ascontiguousarray(train[rows]))
        trained_on = n
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        if config.nprobe is not None:
            ivf.nprobe = min(ivf.nlist, config.nprobe)
    return Built(index=index, kind=kind, positional=is_positional(index), trained_on=trained_on)
