"""What a reindex reads its source through, one-process or sharded alike (`retrieval.reindex`).

A reindex scans its source in a durable cursor order and copies or re-encodes batch by batch. One store's cursor
is the last document's `(seq, id)`. Each shard numbers its own writes, so a sharded source's cursor is one
`(seq, id)` per shard, kept as JSON in the job row's `cursor_id` (its `cursor_seq` stays 0): the scan reads
shard 0 to its end, then shard 1, and so on; a later scan (the catch-up) goes on from each shard's own cursor,
so every document written meanwhile, on any shard, is seen.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Protocol

from retrieval.sharding.fanout import Fanout
from retrieval.sharding.routing import group_by_shard
from retrieval.store import ChunkRow, DocumentRow, PageImage, Store, VectorKind
from retrieval.store.page_files import PageFiles
from retrieval.transfer.shards import PageBytes

__all__ = ["ShardedReader", "SourceReader", "StoreReader", "missing_from"]


class SourceReader(Protocol):
    """The reads a reindex makes of one collection (each runs in a worker thread)."""

    def documents_after(self, seq: int, cursor: str, limit: int) -> tuple[list[DocumentRow], int, str]:
        """Up to `limit` documents after the cursor `(seq, cursor)`, and the cursor after them."""
        ...

    def document_chunks(self, doc_ids: Sequence[str], vectors: Sequence[VectorKind]) -> dict[str, list[ChunkRow]]:
        """`{doc_id: its chunks by position}`."""
        ...

    def page_images(self, doc_ids: Sequence[str]) -> dict[str, PageImage]:
        """`{doc_id: PageImage}` for the page image documents among `doc_ids`."""
        ...

    def page_bytes(self, images: Mapping[str, str]) -> dict[str, PageBytes]:
        """`{digest: files}` for `images` (doc_id -> the digest its page image has)."""
        ...

    def document_ids(self) -> list[str]:
        """Every live document id."""
        ...


class StoreReader:
    """A collection of this process's store."""

    def __init__(self, store: Store, pages: PageFiles, name: str) -> None:
        self.store, self.pages, self.name = store, pages, name

    def documents_after(self, seq: int, cursor: str, limit: int) -> tuple[list[DocumentRow], int, str]:
        rows = self.store.documents_after(self.name, seq, cursor, limit)
        return (rows, rows[-1].seq, rows[-1].id) if rows else (rows, seq, cursor)

    def document_chunks(self, doc_ids: Sequence[str], vectors: Sequence[VectorKind]) -> dict[str, list[ChunkRow]]:
        return self.store.document_chunks(self.name, list(doc_ids), vectors=list(vectors))

    def page_images(self, doc_ids: Sequence[str]) -> dict[str, PageImage]:
        return self.store.page_images(self.name, list(doc_ids))

    def page_bytes(self, images: Mapping[str, str]) -> dict[str, PageBytes]:
        read = self.pages.read
        return {d: PageBytes(read(d, "image"), read(d, "thumbnail")) for d in set(images.values())}

    def document_ids(self) -> list[str]:
        return self.store.document_ids(self.name)


class ShardedReader:
    """A sharded collection, read from the shards that own the documents."""

    def __init__(self, fanout: Fanout) -> None:
        self.fanout = fanout

    def documents_after(self, seq: int, cursor: str, limit: int) -> tuple[list[DocumentRow], int, str]:
        at = _cursors(cursor, self.fanout.size)
        for s in range(self.fanout.size):
            rows: list[DocumentRow] = self.fanout.each({s: ("documents_after", (*at[s], limit))})[s]
            if rows:
                at[s] = (rows[-1].seq, rows[-1].id)
                return rows, 0, json.dumps(at)
        return [], 0, json.dumps(at)

    def document_chunks(self, doc_ids: Sequence[str], vectors: Sequence[VectorKind]) -> dict[str, list[ChunkRow]]:
        groups = group_by_shard(doc_ids, self.fanout.size)
        calls = {s: ("document_chunks", (ids, list(vectors))) for s, ids in groups.items()}
        return {d: rows for part in self.fanout.each(calls).values() for d, rows in part.items()}

    def page_images(self, doc_ids: Sequence[str]) -> dict[str, PageImage]:
        calls = {s: ("page_images", (ids,)) for s, ids in group_by_shard(doc_ids, self.fanout.size).items()}
        return {d: image for part in self.fanout.each(calls).values() for d, image in part.items()}

    def page_bytes(self, images: Mapping[str, str]) -> dict[str, PageBytes]:
        groups = group_by_shard(images, self.fanout.size)
        calls = {s: ("page_bytes", (sorted({images[d] for d in ids}),)) for s, ids in groups.items()}
        return {g: files for part in self.fanout.each(calls).values() for g, files in part.items()}

    def document_ids(self) -> list[str]:
        return sorted(d for part in self.fanout.all("document_ids").values() for d in part)


def _cursors(cursor: str, shards: int) -> list[tuple[int, str]]:
    """Each shard's `(seq, id)` from a sharded cursor (the empty cursor: every shard from its start).

    >>> _cursors("", 2), _cursors('[[4, "a"], [0, ""]]', 2)
    ([(0, ''), (0, '')], [(4, 'a'), (0, '')])
    """
    if not cursor:
        return [(0, "")] * shards
    return [(int(seq), str(doc_id)) for seq, doc_id in json.loads(cursor)]


def missing_from(target: SourceReader, source: SourceReader) -> list[str]:
    """Ids of the target's documents that the source no longer holds (deleted since they were copied)."""
    if isinstance(target, StoreReader) and isinstance(source, StoreReader) and target.store is source.store:
        return target.store.missing_from(target.name, source.name)
    return sorted(set(target.document_ids()) - set(source.document_ids()))
