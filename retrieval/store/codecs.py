"""Vectors <-> SQLite BLOBs. Little-endian, fixed layouts, no pickle; the store's last validation gate.

Layouts:

- dense: float32 ``(d,)`` -> ``4 * d`` bytes (``<f4``);
- multivector: float32/float16 ``(m, d)`` -> float16 ``(m, d)``, ``2 * m * d`` bytes (``<f2``), shape kept in
  the ``mv_rows``/``mv_dim`` columns;
- sparse: ``{id: weight}`` -> ids sorted ascending as ``<i4`` plus their weights as ``<f4`` (two blobs).

Encoders reject non-finite values, empty or mis-shaped arrays with :class:`InvalidRequestError` naming the
request field (``vectors.dense`` ...). Decoders reject blobs whose length does not match the layout with
:class:`StorageError` (a corrupt row).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from retrieval.errors import InvalidRequestError, StorageError
from retrieval.store.records import SparseVector

__all__ = [
    "decode_dense",
    "decode_multivector",
    "decode_sparse",
    "encode_dense",
    "encode_multivector",
    "encode_sparse",
]

_MAX_ID = 2**31 - 1


def _real_array(value: Any, param: str, dtype: str, ndim: int) -> npt.NDArray[Any]:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise InvalidRequestError(
            f"{param} is not a numeric array",
            param=param,
            received=type(value).__name__,
            allowed=f"real {ndim}-D array",
        ) from e
    if arr.dtype.kind not in "fiu" or arr.ndim != ndim or 0 in arr.shape:
        raise InvalidRequestError(
            f"{param} must be a non-empty real {ndim}-D array",
            param=param,
            received=f"{arr.dtype} {arr.shape}",
            allowed=f"real {ndim}-D array",
        )
    if arr.dtype == np.dtype(dtype):
        out = arr  # nothing to convert (bulk loads hand float32 rows): no cast, no error-state context
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            out = arr.astype(dtype)
    if not np.isfinite(out).all():
        raise InvalidRequestError(
            f"{param} holds NaN or infinity (or values out of {np.dtype(dtype).name} range)",
            param=param,
            received="non-finite value",
            allowed="finite numbers",
        )
    return out


def encode_dense(vector: Any, param: str = "vectors.dense") -> bytes:
    """float32 ``(d,)`` (any real dtype is converted) -> ``4 * d`` little-endian bytes.

    >>> decode_dense(encode_dense([1.0, -2.5])).tolist()
    [1.0, -2.5]
    """
    return _real_array(vector, param, "<f4", 1).tobytes()


def decode_dense(blob: bytes) -> npt.NDArray[np.float32]:
    """``4 * d`` bytes -> float32 ``(d,)`` (a fresh, writable array)."""
    if len(blob) % 4:
        raise StorageError(f"dense blob of {len(blob)} bytes is not a whole number of float32", received=len(blob))
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def encode_multivector(vectors: Any, param: str = "vectors.multivector") -> tuple[bytes, int, int]:
    """float32/float16 ``(m, d)`` -> ``(float16 bytes, m, d)``; values beyond float16 range are rejected.

    >>> blob, m, d = encode_multivector([[0.5, 1.0], [2.0, -4.0]])
    >>> (len(blob), m, d)
    (8, 2, 2)
    """
    arr = _real_array(vectors, param, "<f2", 2)
    return arr.tobytes(), int(arr.shape[0]), int(arr.shape[1])


def decode_multivector(blob: bytes, rows: int, dim: int) -> npt.NDArray[np.float32]:
    """float16 bytes of shape ``(rows, dim)`` -> float32 ``(rows, dim)``."""
    if rows < 1 or dim < 1 or len(blob) != 2 * rows * dim:
        raise StorageError(
            f"multivector blob of {len(blob)} bytes does not hold float16 ({rows}, {dim})",
            received=len(blob),
            allowed=2 * rows * dim,
        )
    return np.frombuffer(blob, dtype="<f2").reshape(rows, dim).astype(np.float32)


def _sparse_id(key: object, param: str) -> int:
    if isinstance(key, bool) or not isinstance(key, numbers.Integral) or not 0 <= int(key) <= _MAX_ID:
        raise InvalidRequestError(
            f"{param} token ids must be integers in [0, {_MAX_ID}]",
            param=param,
            received=repr(key)[:40],
            allowed=f"integer in [0, {_MAX_ID}]",
        )
    return int(key)


def encode_sparse(vector: Mapping[Any, Any], param: str = "vectors.sparse") -> tuple[bytes, bytes]:
    """``{token_id: weight}`` -> ``(ids <i4 sorted ascending, weights <f4)``; ``{}`` gives two empty blobs.

    >>> ids, weights = encode_sparse({7: 0.5, 2: 1.0})
    >>> decode_sparse(ids, weights)
    {2: 1.0, 7: 0.5}
    """
    if not isinstance(vector, Mapping):
        raise InvalidRequestError(
            f"{param} must be an object of token id -> weight",
            param=param,
            received=type(vector).__name__,
            allowed="{token_id: weight}",
        )
    ids = np.array(sorted(_sparse_id(k, param) for k in vector), dtype="<i4")
    try:
        weights = np.array([vector[int(i)] for i in ids], dtype=np.float64).astype("<f4")
    except (ValueError, TypeError) as e:
        raise InvalidRequestError(
            f"{param} weights must be numbers", param=param, received="non-numeric weight", allowed="finite numbers"
        ) from e
    if not np.isfinite(weights).all():
        raise InvalidRequestError(
            f"{param} holds NaN or infinity (or values out of float32 range)",
            param=param,
            received="non-finite value",
            allowed="finite numbers",
        )
    return ids.tobytes(), weights.tobytes()


def decode_sparse(ids_blob: bytes, weights_blob: bytes) -> SparseVector:
    """``(<i4 ids, <f4 weights)`` blobs of equal count -> ``{token_id: weight}`` in ascending id order."""
    if len(ids_blob) % 4 or len(ids_blob) != len(weights_blob):
        raise StorageError(
            f"sparse blobs of {len(ids_blob)} and {len(weights_blob)} bytes do not pair up",
            received=(len(ids_blob), len(weights_blob)),
        )
    ids = np.frombuffer(ids_blob, dtype="<i4").tolist()
    weights = np.frombuffer(weights_blob, dtype="<f4").tolist()
    return dict(zip(ids, weights, strict=True))
