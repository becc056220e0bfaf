"""Index layer: dense (FAISS), multi-vector (MaxSim), sparse and BM25 indexes with one verb set.

Every family speaks ``add(ids, items)``, ``search(queries, k, allowed_ids=None) -> SearchResult``,
``remove(ids)``, ``len()``, ``save(dir, seq=None)`` and ``Cls.load(dir)``; an exact sibling sits beside
each as the reference. numpy in, numpy out; may use :mod:`poolers.maxsim`, never encoder/retrieval/api.
"""

from index.bm25 import BM25Index
from index.bm25_stats import BM25Stats
from index.config import BM25Config, DenseConfig, MultiVectorConfig
from index.dense import DenseIndex
from index.device import gpu_count
from index.errors import (
    IndexConfigError,
    IndexCorruptError,
    IndexFormatError,
    IndexStoreError,
    InvalidIdsError,
    InvalidQueryError,
    InvalidVectorsError,
)
from index.exact import ExactBM25Index, ExactDenseIndex, ExactMultiVectorIndex, ExactSparseIndex
from index.multivector import MultiVectorIndex
from index.persist import FORMAT_VERSION
from index.protocol import Index
from index.sparse import SparseIndex
from index.types import (
    DEFAULT_METRIC,
    MISSING_ID,
    MISSING_SCORE,
    DenseKind,
    DeviceChoice,
    IndexFamily,
    Metric,
    MultiVectorKind,
    SearchResult,
    SparseItem,
)

__all__ = [
    "DEFAULT_METRIC",
    "FORMAT_VERSION",
    "MISSING_ID",
    "MISSING_SCORE",
    "BM25Config",
    "BM25Index",
    "BM25Stats",
    "DenseConfig",
    "DenseIndex",
    "DenseKind",
    "DeviceChoice",
    "ExactBM25Index",
    "ExactDenseIndex",
    "ExactMultiVectorIndex",
    "ExactSparseIndex",
    "Index",
    "IndexConfigError",
    "IndexCorruptError",
    "IndexFamily",
    "IndexFormatError",
    "IndexStoreError",
    "InvalidIdsError",
    "InvalidQueryError",
    "InvalidVectorsError",
    "Metric",
    "MultiVectorConfig",
    "MultiVectorIndex",
    "MultiVectorKind",
    "SearchResult",
    "SparseIndex",
    "SparseItem",
    "gpu_count",
]
