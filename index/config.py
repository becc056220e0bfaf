"""Frozen configuration structs of the index families (saved in each snapshot's manifest)."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from index.errors import IndexConfigError
from index.types import DEFAULT_METRIC, DenseKind, DeviceChoice, FirstStage, Metric, MultiVectorKind, ScoringDType

__all__ = ["BM25Config", "DenseConfig", "MultiVectorConfig", "config_from_meta", "config_to_meta"]

_C = TypeVar("_C", bound=msgspec.Struct)


class DenseConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a :class:`~index.dense.DenseIndex` is built and searched."""

    kind: DenseKind = "auto"  # organisation; "auto" = flat below auto_flat_max, IVF above
    metric: Metric = DEFAULT_METRIC  # "cosine" (default) L2-normalises vectors on add and search; "ip" does not
    factory: str | None = None  # FAISS index_factory string, required when kind == "factory"
    auto_flat_max: int = 100_000  # "auto": exact flat search below this many vectors
    auto_ivf_flat_max: int = 4_000_000  # "auto": IVF-Flat below this many, IVF-SQ8 above
    nlist: int | None = None  # IVF lists; None = 4 * sqrt(n) at training time
    nprobe: int | None = None  # IVF lists probed; None = max(8, nlist // 32)
    pq_m: int | None = None  # IVF-PQ sub-quantizers (must divide dim); None = dim // 4 (8-bit codes)
    hnsw_m: int = 32  # HNSW neighbours per node
    ef_construction: int = 80  # HNSW build beam width
    ef_search: int = 128  # HNSW search beam width (raised to >= 2k per search)
    compact_ratio: float = 0.3  # dead-slot fraction above which HNSW is rebuilt (flat: its ids renumbered)
    retrain_growth: float = 8.0  # IVF is retrained once it holds this many times its training size
    device: DeviceChoice = "auto"  # "auto": flat/IVF search on a faiss GPU, else flat on a CUDA torch

    def __post_init__(self) -> None:
        if self.kind == "factory" and not self.factory:
            raise IndexConfigError("factory", "a FAISS factory string when kind='factory'", "None")
        if not 0.0 < self.compact_ratio <= 1.0:
            raise IndexConfigError("compact_ratio", "0 < ratio <= 1", repr(self.compact_ratio))
        if self.retrain_growth <= 1.0:
            raise IndexConfigError("retrain_growth", "> 1", repr(self.retrain_growth))


class MultiVectorConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a :class:`~index.multivector.MultiVectorIndex` is built and searched."""

    kind: MultiVectorKind = "auto"  # "auto": exact below auto_exact_max documents, two-stage, then compressed
    auto_exact_max: int = 5_000  # "auto": exact MaxSim scan below this many documents
    auto_compressed_min: int = 1_000_000  # "auto": compressed (vectors on disk) from this many stored tokens
    nlist: int | None = None  # token IVF lists; None = 4 * sqrt(tokens) at training time
    nprobe: int = 16  # token IVF lists probed per query vector
    pq_m: int | None = None  # token IVF-PQ sub-quantizers (bytes per token code); None = dim // 8
    token_k: int = 512  # nearest token vectors per query vector (at least half an IVF list: TokenCandidates.depth)
    rerank: int = 100  # documents (times k / 10, at least k, at least token_k / 10) reranked with exact MaxSim
    compact_ratio: float = 0.5  # dead-token fraction above which the token store is rewritten
    retrain_growth: float = 8.0  # retrain the token IVF once tokens exceed this multiple of its training set
    drift_ratio: float = 1.5  # compressed: retrain once recent adds' quantisation error exceeds this x training's
    pool_factor: int = 1  # token pooling on add: keep ceil(m / pool_factor) cluster means per document; 1 = off
    first_stage: FirstStage = "ivf_pq"  # two-stage candidates: token IVF-PQ codes, or binary sign codes (Hamming)
    dtype: ScoringDType = "bfloat16"  # exact MaxSim matmul dtype (bfloat16: AMX/AVX-512 BF16, fp32 accumulate)
    search_threads: int | None = 1  # FAISS/torch threads of one search (index/threads.py); None = their defaults

    def __post_init__(self) -> None:
        for name in ("nprobe", "token_k", "rerank", "pool_factor"):
            if getattr(self, name) < 1:
                raise IndexConfigError(name, ">= 1", repr(getattr(self, name)))
        if self.search_threads is not None and self.search_threads < 1:
            raise IndexConfigError("search_threads", ">= 1 or None", repr(self.search_threads))
        if self.kind == "compressed" and self.first_stage != "ivf_pq":
            raise IndexConfigError("first_stage", "ivf_pq with kind 'compressed'", repr(self.first_stage))
        if self.drift_ratio <= 1.0 or self.retrain_growth <= 1.0:
            raise IndexConfigError("drift_ratio/retrain_growth", "> 1", f"{self.drift_ratio}/{self.retrain_growth}")


class BM25Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """BM25 parameters (Lucene variant) and tokenization of a :class:`~index.bm25.BM25Index`."""

    k1: float = 1.5  # term-frequency saturation
    b: float = 0.75  # length normalisation
    stopwords: str | None = "en"  # bm25s stopword list name, or None to keep every token
    stemmer: str | None = None  # Snowball stemmer language (PyStemmer), e.g. "english"; None = no stemming


def config_to_meta(config: msgspec.Struct) -> dict[str, Any]:
    """JSON-ready dict of a config struct."""
    return dict(msgspec.to_builtins(config))


def config_from_meta(cls: type[_C], meta: Any) -> _C:
    """Rebuild a config struct saved by :func:`config_to_meta`, with typed errors."""
    try:
        return msgspec.convert(meta, cls)
    except msgspec.ValidationError as e:
        raise IndexConfigError(cls.__name__, "a valid saved config", str(e)) from e
