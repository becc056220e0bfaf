"""Input validation shared by every index family: typed errors, never ``assert``.

Each function returns the input converted to the exact dtype and layout the index needs (no copy when it
already is) or raises a subclass of :class:`~index.errors.InvalidVectorsError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from index.errors import InvalidIdsError, InvalidQueryError, InvalidVectorsError
from index.types import SparseItem

__all__ = [
    "as_allowed_ids",
    "as_ids",
    "as_matrix",
    "as_multivectors",
    "as_sparse_items",
    "as_texts",
    "check_k",
    "describe",
]


def describe(x: Any) -> str:
    """A short human description of ``x`` for error messages, e.g. ``float64 (3, 5)``."""
    if isinstance(x, np.ndarray):
        return f"{x.dtype} {tuple(x.shape)}"
    return type(x).__name__


def as_ids(ids: Any, n_items: int | None = None) -> npt.NDArray[np.int64]:
    """Convert ``ids`` to a 1-D int64 array of unique non-negative values (length ``n_items`` if given)."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or not (arr.dtype.kind in "iu" or arr.size == 0):
        raise InvalidIdsError("ids", "1-D integer array", describe(arr))
    arr = arr.astype(np.int64, copy=False)
    if n_items is not None and arr.shape[0] != n_items:
        raise InvalidIdsError("ids", f"{n_items} ids (one per item)", f"{arr.shape[0]} ids")
    if arr.size and arr.min() < 0:
        raise InvalidIdsError("ids", "non-negative int64 values", f"min {int(arr.min())}")
    if np.unique(arr).size != arr.size:
        raise InvalidIdsError("ids", "unique ids within one call", "duplicates")
    return arr


def as_matrix(x: Any, dim: int, param: str = "items") -> npt.NDArray[np.float32]:
    """Convert ``x`` to a C-contiguous float32 ``(n, dim)`` matrix of finite values."""
    arr = np.asarray(x)
    err = InvalidQueryError if param == "queries" else InvalidVectorsError
    if arr.ndim != 2 or arr.shape[1] != dim or arr.dtype.kind != "f":
        raise err(param, f"float32 (n, {dim})", describe(arr))
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise err(param, "finite values", "NaN or inf")
    return arr


def as_multivectors(items: Any, dim: int, param: str = "items") -> list[npt.NDArray[np.float32]]:
    """Convert a sequence of ``(m_i, dim)`` float arrays (``m_i >= 1``) to float32 matrices."""
    if isinstance(items, np.ndarray) and items.ndim == 3:
        items = list(items)
    if not isinstance(items, Sequence):
        raise InvalidVectorsError(param, f"list of float32 (m_i, {dim})", describe(items))
    out = [as_matrix(m, dim, param) for m in items]
    for i, m in enumerate(out):
        if m.shape[0] == 0:
            raise InvalidVectorsError(f"{param}[{i}]", "at least one vector", "0 vectors")
    return out


def as_sparse_items(items: Any, param: str = "items") -> list[SparseItem]:
    """Check a sequence of ``{token_id: weight}`` dicts (int keys >= 0, finite float weights)."""
    if not isinstance(items, Sequence):
        raise InvalidVectorsError(param, "list of {token_id: weight} dicts", describe(items))
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidVectorsError(f"{param}[{i}]", "dict {int: float}", describe(item))
        for tok, w in item.items():
            if not isinstance(tok, int | np.integer) or isinstance(tok, bool) or tok < 0:
                raise InvalidVectorsError(f"{param}[{i}]", "token ids int >= 0", repr(tok))
            if not np.isfinite(w):
                raise InvalidVectorsError(f"{param}[{i}]", "finite weights", repr(w))
    return list(items)


def as_texts(items: Any, param: str = "items") -> list[str]:
    """Check a sequence of strings (a bare ``str`` is refused: wrap it in a list)."""
    if isinstance(items, str) or not isinstance(items, Sequence):
        raise InvalidVectorsError(param, "list of str", describe(items))
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise InvalidVectorsError(f"{param}[{i}]", "str", describe(t))
    return list(items)


def check_k(k: Any) -> int:
    """Check that ``k`` is an int >= 1."""
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
        raise InvalidQueryError("k", "int >= 1", repr(k))
    return int(k)


def as_allowed_ids(allowed_ids: Any) -> npt.NDArray[np.int64] | None:
    """``None`` (no filter) or a 1-D int64 array of the ids a search may return."""
    if allowed_ids is None:
        return None
    arr = np.asarray(allowed_ids)
    if arr.ndim != 1 or not (arr.dtype.kind in "iu" or arr.size == 0):
        raise InvalidQueryError("allowed_ids", "None or 1-D integer array", describe(arr))
    return arr.astype(np.int64, copy=False)
