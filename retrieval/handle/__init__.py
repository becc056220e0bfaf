"""One handle for a collection, wherever its documents live: the protocol every collection speaks to the service
(`protocol.CollectionHandle`: settings, search runner, writes, deletes, bulk target, snapshots, drop) with the
value types it answers in, and its implementation over this process's store and indexes (`local`). The other
implementation, over shard actors, is `retrieval.sharding.handle`; nothing outside `sharding/` (and
`distributed/`) asks which kind a collection is.

May import: `retrieval.bulk`, `retrieval.ingest`, `retrieval.search` and everything below them; never
`sharding`, `service` or above."""

from retrieval.handle.local import LocalCollection, LocalHome
from retrieval.handle.protocol import CollectionHandle, CollectionInfo, Encode, IngestResult, ShardStatus

__all__ = [
    "CollectionHandle",
    "CollectionInfo",
    "Encode",
    "IngestResult",
    "LocalCollection",
    "LocalHome",
    "ShardStatus",
]
