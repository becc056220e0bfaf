"""One handle for a collection, wherever its documents live: the protocol every collection speaks to the service
(`protocol.CollectionHandle`: settings, search runner, writes, page writes and files, deletes, bulk target,
export, the write hold a reindex's swap takes, snapshots, drop) with the value types it answers in, what a
reindex reads a collection through (`protocol.SourceReader`), and their implementations over this process's
store and indexes (`local`). The others, over shard actors, are in `retrieval.sharding`; nothing outside
`sharding/` (and `distributed/`) asks which kind a collection is.

May import: `retrieval.transfer`, `retrieval.evaluation`, `retrieval.bulk`, `retrieval.ingest`,
`retrieval.search` and everything below them; never `sharding`, `service` or above."""

from retrieval.handle.local import LocalCollection, LocalHome, StoreReader
from retrieval.handle.protocol import (
    CollectionHandle,
    CollectionInfo,
    Encode,
    IngestResult,
    ShardStatus,
    SourceReader,
)

__all__ = [
    "CollectionHandle",
    "CollectionInfo",
    "Encode",
    "IngestResult",
    "LocalCollection",
    "LocalHome",
    "ShardStatus",
    "SourceReader",
    "StoreReader",
]
