"""Bytes per document of a multi-vector index, expected (before ingesting) and actual (after).

Counted per document: the float16 store (``2 * dim`` bytes per kept vector plus 16 bytes of extents), the
8-byte slot id, and, when the collection runs two-stage search, one first-stage code plus an 8-byte id per
kept vector (``pq_m`` bytes for IVF-PQ, ``dim / 8`` for binary sign codes). IVF centroids are shared by the
whole index and not counted. The expected figure uses ``ceil(m / pool_factor)`` kept vectors; the actual one
divides what the index holds by its live documents.
"""

from __future__ import annotations

from index.config import MultiVectorConfig
from poolers.token_pooling import pooled_length

__all__ = ["code_bytes_per_token", "expected_bytes_per_doc"]

_EXTENT_BYTES = 16  # int64 start + int64 length per slot
_ID_BYTES = 8  # int64 slot id


def code_bytes_per_token(config: MultiVectorConfig, dim: int) -> int:
    """First-stage bytes per kept vector (code + id) for ``config.first_stage``.

    >>> code_bytes_per_token(MultiVectorConfig(first_stage="binary"), 320)
    48
    >>> code_bytes_per_token(MultiVectorConfig(first_stage="ivf_pq", pq_m=40), 320)
    48
    """
    if config.first_stage == "binary":
        return dim // 8 + _ID_BYTES
    want = config.pq_m if config.pq_m is not None else max(1, dim // 8)
    return max(m for m in range(1, want + 1) if dim % m == 0) + _ID_BYTES


def expected_bytes_per_doc(config: MultiVectorConfig, dim: int, tokens_per_doc: int, two_stage: bool) -> int:
    """Bytes one document of ``tokens_per_doc`` vectors of ``dim`` will take in the index.

    >>> expected_bytes_per_doc(MultiVectorConfig(pool_factor=3), 320, 768, two_stage=False)
    163864
    """
    kept = pooled_length(tokens_per_doc, config.pool_factor)
    codes = kept * code_bytes_per_token(config, dim) if two_stage else 0
    return kept * 2 * dim + _EXTENT_BYTES + _ID_BYTES + codes
