"""Candidate chunk lists deep enough to hold a number of distinct documents (document-grouped searches,
`/evaluate`, `tune`).

An index answers the best `k` chunks; a document may have many of them, so `k = n` chunks can hold far fewer
than `n` documents. `document_lists` asks each query's index for `need` chunks and, while a list came back full
(the index may hold more) with fewer than `need` distinct documents, asks again deeper (at least twice as deep,
more when the list so far shows many chunks per document), until every list holds `need` documents or is
exhausted (fewer chunks than asked: every matching chunk is in it). So a search of `k` documents returns `k`
whenever that many documents match its filter. A sharded collection's indexes merge their shards' lists on each
round (`retrieval.sharding.views`); its store answers each chunk's document from the shard that holds it.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any, Protocol

import numpy as np

from index import SearchResult
from retrieval.search.documents import docs_in
from retrieval.search.fusion import RankedList
from retrieval.search.planner import ranked

__all__ = ["ChunkDocuments", "Searchable", "document_lists", "without"]

_SLACK = 1.25  # a deeper round asks for this much more than the chunks-per-document seen so far suggests


class Searchable(Protocol):
    """An `IndexSet` (or a sharded collection's merged view)."""

    def search(self, family: Any, queries: Any, k: int, allowed: Any) -> SearchResult: ...


class ChunkDocuments(Protocol):
    """A store (or a sharded collection's view) that says which document each chunk belongs to."""

    def chunk_documents(self, collection: str, chunk_ids: Any) -> dict[int, str]: ...


def without(lst: RankedList, exclude: Collection[int]) -> RankedList:
    """`lst` without the chunk ids in `exclude`."""
    if not exclude:
        return lst
    keep = ~np.isin(lst.ids, np.fromiter(exclude, np.int64))
    return RankedList(lst.ids[keep], lst.scores[keep])


def _take(queries: Any, rows: list[int]) -> Any:
    """Rows `rows` of a batch of queries (a float32 (n, d) array, or a list)."""
    if isinstance(queries, np.ndarray):
        return queries[rows]
    return [queries[r] for r in rows]


def _size(queries: Any) -> int:
    return int(queries.shape[0]) if isinstance(queries, np.ndarray) else len(queries)


def document_lists(
    indexes: Searchable,
    store: ChunkDocuments,
    collection: str,
    family: str,
    queries: Any,
    need: int,
    *,
    allowed: Any = None,
    exclude: Collection[int] = (),
    doc_of: dict[int, str] | None = None,
) -> tuple[list[RankedList], dict[int, str]]:
    """Each query's chunk list (best first) holding at least `need` distinct documents, or every chunk that
    matches; and chunk id -> document id for every chunk in them (`doc_of`, extended in place when given).
    `queries`: a batch in the family's index form; `exclude`: chunk ids left out (a "more like this" source)."""
    doc_of = {} if doc_of is None else doc_of
    out: list[RankedList] = [RankedList(np.zeros(0, np.int64), np.zeros(0, np.float32))] * _size(queries)
    pending, depth = list(range(_size(queries))), need
    while pending:
        result = indexes.search(family, _take(queries, pending), depth, allowed)
        lists = [ranked(result, row) for row in range(len(pending))]
        unknown = np.unique(np.concatenate([lst.ids for lst in lists]))
        unknown = unknown[[int(i) not in doc_of for i in unknown.tolist()]] if unknown.size else unknown
        if unknown.size:
            doc_of.update(store.chunk_documents(collection, unknown))
        short: list[tuple[int, int]] = []  # (query row, documents found) of full lists still short of `need`
        for row, lst in zip(pending, lists, strict=True):
            out[row] = without(lst, exclude)
            found = docs_in(out[row], doc_of)
            if lst.ids.size >= depth and found < need:
                short.append((row, found))
        pending = [row for row, _ in short]
        fewest = min((found for _, found in short), default=1)
        depth = max(2 * depth, math.ceil(depth * need / max(fewest, 1) * _SLACK))
    return out, doc_of
