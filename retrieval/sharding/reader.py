"""What a reindex reads a sharded collection through (`retrieval.handle.SourceReader`; `retrieval.reindex`).

A reindex scans its source in a durable cursor order and copies or re-encodes batch by batch. One store's cursor
is the last document's `(seq, id)`. Each shard numbers its own writes, so a sharded source's cursor is one
`(seq, id)` per shard, kept as JSON in the job row's `cursor_id` (its `cursor_seq` stays 0): the scan reads
shard 0 to its end, then shard 1, and so on; a later scan (the catch-up) goes on from each shard's own cursor,
so every document written meanwhile, on any shard, is seen.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from retrieval.handle.protocol import SourceReader, ids_not_in
from retrieval.sharding.fanout import Fanout
from retrieval.sharding.routing import group_by_shard
from retrieval.store import ChunkRow, DocumentRow, PageImage, VectorKind
from retrieval.store.page_files import PageBytes

__all__ = ["ShardedReader"]


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

    def not_in(self, source: SourceReader) -> list[str]:
        return ids_not_in(self, source)

    def shares_pages(self, other: SourceReader) -> bool:
        return False  # each shard keeps its own page files


def _cursors(cursor: str, shards: int) -> list[tuple[int, str]]:
    """Each shard's `(seq, id)` from a sharded cursor (the empty cursor: every shard from its start).

    >>> _cursors("", 2), _cursors('[[4, "a"], [0, ""]]', 2)
    ([(0, ''), (0, '')], [(4, 'a'), (0, '')])
    """
    if not cursor:
        return [(0, "")] * shards
    return [(int(seq), str(doc_id)) for seq, doc_id in json.loads(cursor)]
