"""Which shard owns a document.

A document goes to shard ``blake2b(id) mod S``: stable across processes, Python versions and restarts (never
Python's salted ``hash``), and every chunk of a document lands with it. Chunk ids are the collection's own
(`retrieval.sharding.ids`), the same on the coordinator and on the shard that stores the chunk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from retrieval.spec.collection import MAX_SHARDS

__all__ = ["MAX_SHARDS", "group_by_shard", "shard_of"]


def shard_of(doc_id: str, shards: int) -> int:
    """The shard that owns document `doc_id` among `shards`.

    >>> shard_of("doc-1", 1), shard_of("doc-1", 3) == shard_of("doc-1", 3)
    (0, True)
    """
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def group_by_shard(doc_ids: Iterable[str], shards: int) -> dict[int, list[str]]:
    """Document ids per owning shard (shards with none are absent), in the given order."""
    out: dict[int, list[str]] = {}
    for d in doc_ids:
        out.setdefault(shard_of(d, shards), []).append(d)
    return out
