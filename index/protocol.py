"""The verbs every index family speaks (FAISS's habit): one `Protocol`, so code above can hold any family.

>>> from index import BM25Index, DenseIndex, MultiVectorIndex, SparseIndex
>>> all(isinstance(i, Index) for i in (DenseIndex(4), MultiVectorIndex(4), SparseIndex(), BM25Index()))
True
"""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

from index.types import SearchResult

__all__ = ["Index"]


@runtime_checkable
class Index(Protocol):
    """`add(ids, items)`, `search(queries, k, allowed_ids)`, `remove(ids)`, `len()`, `save(dir, seq)`,
    `remap_ids(old, new)`; `load` is a classmethod of each family. `seq` is the store sequence number a loaded
    snapshot contains."""

    seq: int | None  # last write included in the snapshot it was loaded from (None: never saved)

    def __len__(self) -> int: ...

    def add(self, ids: Any, items: Any) -> None:
        """Insert or replace `items` under int64 `ids` (n,)."""

    def remove(self, ids: Any) -> None:
        """Remove `ids`; unknown ids are ignored and removed ids are never returned again."""

    def search(self, queries: Any, k: int, allowed_ids: Any = None) -> SearchResult:
        """Best `k` ids per query: scores float32 (n, k), ids int64 (n, k), -1 where fewer than k exist."""

    def save(self, directory: str | os.PathLike[str], seq: int | None = None) -> None:
        """Atomically write the index to `directory`, recording `seq`."""

    def remap_ids(self, old: Any, new: Any) -> None:
        """Rename every live id `old[i]` to `new[i]` (int64 (m,) each), the indexed data left as it is."""
