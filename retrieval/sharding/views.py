"""The store and index views a `SearchRunner` reads a sharded collection through.

Search, `/evaluate` and `tune` run their ordinary code over these: `ShardedIndexes.search` fans one family's
query out to every shard and merges (BM25 first gathers each shard's statistics for the query's terms and
scores with their sums: Elasticsearch's `dfs_query_then_fetch`), `ShardedStore` reads chunks, documents and page
images from the shards that own them. A filter is not evaluated here: `chunk_ids_where` hands back a
`Pushdown` that every shard turns into its own allowed ids.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from index import BM25Stats, SearchResult
from index.bm25 import tokenize
from retrieval.errors import DocumentNotFoundError, InvalidRequestError
from retrieval.indexes import Family
from retrieval.sharding.fanout import Fanout, by_shard, merge_results
from retrieval.sharding.ids import ChunkIds
from retrieval.sharding.routing import group_by_shard, shard_of
from retrieval.sharding.shard import Pushdown, ShardWrite
from retrieval.spec.collection import CollectionSpec
from retrieval.store import ChunkRow, DocumentRecord, DocumentRow, PageImage, VectorKind, WriteResult
from retrieval.store.page_files import PageBytes

__all__ = ["ShardedIndexes", "ShardedStore"]

I64 = npt.NDArray[np.int64]
_FINISH_BULK_S = 3600.0  # how long the end of a bulk load waits for a shard to train its dense index


def _rows(queries: Any) -> int:
    return len(queries) if isinstance(queries, list) else int(np.asarray(queries).shape[0])


class ShardedIndexes:
    """`IndexSet.search` over every shard, merged."""

    def __init__(self, fanout: Fanout, spec: CollectionSpec, dims: Mapping[str, int] | None = None) -> None:
        self.fanout, self.spec = fanout, spec
        self.dims = dict(dims or {})  # vector width per representation (a bulk load checks its inputs)

    def apply(self, rows: Sequence[ChunkRow], removed: I64, seq: int) -> None:
        """Nothing to do: each shard indexed its part of a write before answering it."""

    @contextlib.contextmanager
    def bulk(self, collection: str) -> Iterator[None]:
        """A bulk load runs inside this: each shard holds off its dense-index upgrade and snapshots meanwhile,
        and at the end builds the dense index of the kind its size calls for (flat -> IVF) and BM25, at once."""
        self.fanout.all("start_bulk")
        try:
            yield
        finally:
            calls = {s: ("finish_bulk", ()) for s in range(self.fanout.size)}
            self.fanout.group.call(calls, max(self.fanout.timeout_s, _FINISH_BULK_S))  # a down shard: at its start

    def search(self, family: Family, queries: Any, k: int, allowed: Pushdown | I64 | None) -> SearchResult:
        """Best `k` chunk ids per query over the collection (`allowed`: a pushed-down filter, or None)."""
        if allowed is not None and not isinstance(allowed, Pushdown):
            raise InvalidRequestError("a sharded collection filters on each shard", param="filter")
        stats = self._bm25_stats(queries) if family == "bm25" else None
        answers = self.fanout.all("search", family, queries, k, allowed, stats)
        return merge_results(by_shard(answers), _rows(queries), k)

    def _bm25_stats(self, queries: list[str]) -> BM25Stats:
        terms = sorted({t for q in tokenize(list(queries), self.spec.index.bm25) for t in q})
        return BM25Stats.merge(by_shard(self.fanout.all("bm25_stats", terms)))

    def sizes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for sizes in self.fanout.all("sizes").values():
            for family, n in sizes.items():
                out[family] = out.get(family, 0) + n
        return out


class ShardedStore:
    """The reads of `retrieval.store.Store` a search makes, from the shards that own the rows."""

    def __init__(self, fanout: Fanout, ids: ChunkIds | None = None) -> None:
        self.fanout, self.ids = fanout, ids  # ids: the collection's chunk id counter (writes)

    def chunk_ids_where(self, collection: str, where_sql: str, params: Sequence[object]) -> Pushdown:
        return Pushdown(where_sql, tuple(params))

    def get_chunks(self, collection: str, chunk_ids: Any, *, vectors: Sequence[VectorKind] = ()) -> list[ChunkRow]:
        """Chunks by id, in the order given (absent ids skipped); each shard returns those it holds."""
        ids = np.asarray(chunk_ids, np.int64).reshape(-1)
        if ids.size == 0:
            return []
        found = {r.chunk_id: r for rows in self.fanout.all("get_chunks", ids, list(vectors)).values() for r in rows}
        return [found[i] for i in ids.tolist() if i in found]

    def chunk_documents(self, collection: str, chunk_ids: Any) -> dict[int, str]:
        """Chunk id -> document id; each shard answers for the chunks it holds."""
        ids = np.asarray(chunk_ids, np.int64).reshape(-1)
        out: dict[int, str] = {}
        if ids.size:
            for part in self.fanout.all("chunk_documents", ids).values():
                out.update(part)
        return out

    def get_document(self, collection: str, doc_id: str) -> DocumentRow:
        shard = shard_of(doc_id, self.fanout.size)
        answer = self.fanout.each({shard: ("get_document", (doc_id,))})
        if shard not in answer:  # missing under allow_partial
            raise DocumentNotFoundError(collection, doc_id)
        row: DocumentRow = answer[shard]
        return row

    def get_chunk_by_key(self, collection: str, key: str, *, vectors: Sequence[VectorKind] = ()) -> ChunkRow:
        """A chunk by its client id: `doc` or `doc#position` (a document id may itself hold '#')."""
        owners = dict.fromkeys(
            [shard_of(key, self.fanout.size)]
            + ([shard_of(key.rsplit("#", 1)[0], self.fanout.size)] if "#" in key else [])
        )
        for shard in owners:
            try:
                answer = self.fanout.each({shard: ("get_chunk_by_key", (key, list(vectors)))})
            except DocumentNotFoundError:
                continue
            if shard in answer:
                row: ChunkRow = answer[shard]
                return row
        raise DocumentNotFoundError(collection, key)

    def page_images(self, collection: str, doc_ids: Sequence[str]) -> dict[str, PageImage]:
        groups = group_by_shard(doc_ids, self.fanout.size)
        out: dict[str, PageImage] = {}
        for images in self.fanout.each({s: ("page_images", (ids,)) for s, ids in groups.items()}).values():
            out.update(images)
        return out

    def write(
        self, collection: str, upserts: Sequence[DocumentRecord] = (), deletes: Sequence[str] = ()
    ) -> WriteResult:
        """A bulk load's batch, split by owning shard; each shard commits and indexes its part (503 naming a
        shard that is down: the other shards' parts are written, and a retry skips them as unchanged)."""
        assert self.ids is not None, "a write needs the collection's chunk id counter"
        calls = write_calls(list(upserts), list(deletes), self.fanout.size, self.ids)
        done: list[ShardWrite] = list(self.fanout.each(calls).values())
        return WriteResult(
            max((w.seq for w in done), default=0),
            np.concatenate([w.added for w in done]) if done else np.zeros(0, np.int64),
            np.zeros(sum(w.removed for w in done), np.int64),  # (counted; the shards removed them already)
            [i for w in done for i in w.skipped],
        )

    def content_hashes(self, collection: str, ids: Sequence[str]) -> dict[str, str]:
        groups = group_by_shard(ids, self.fanout.size)
        out: dict[str, str] = {}
        for hashes in self.fanout.each({s: ("content_hashes", (g,)) for s, g in groups.items()}).values():
            out.update(hashes)
        return out


def write_calls(
    records: list[DocumentRecord],
    deletes: list[str],
    shards: int,
    ids: ChunkIds,
    pages: Mapping[str, PageBytes] | None = None,
) -> dict[int, tuple[str, tuple[Any, ...]]]:
    """`{shard: ("write", (records, deletes, first_ids, pages))}`: each record to its owning shard, its chunks
    numbered from one block of the collection's ids in the order of `records` (the write order a single store
    keeps), with the page image files (`pages`: digest -> files) its record references."""
    first = ids.take(sum(len(r.chunks) for r in records)) if records else 0
    routed: dict[int, tuple[list[DocumentRecord], list[str], dict[str, int], dict[str, PageBytes]]] = {}
    for r in records:
        part = routed.setdefault(shard_of(r.id, shards), ([], [], {}, {}))
        part[0].append(r)
        part[2][r.id] = first
        first += len(r.chunks)
        if r.image is not None and pages and r.image.digest in pages:
            part[3][r.image.digest] = pages[r.image.digest]
    for d in deletes:
        routed.setdefault(shard_of(d, shards), ([], [], {}, {}))[1].append(d)
    return {s: ("write", part) for s, part in routed.items()}
