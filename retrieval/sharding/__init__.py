"""Sharded collections: documents spread over S shards by a hash of their id, each shard a store and indexes of
its own (run by a Ray actor, `retrieval.distributed.shards`), searched by fanning out and merging exactly.
`handle` puts a sharded collection behind the one collection handle and decides where a collection's
documents live (`ShardPlacement`): the only place outside `distributed/` that tells local and sharded apart.
Nothing here imports Ray. Import the submodules directly.

Page images live on the shard that owns their document; export gathers each shard's part into one archive and
import spreads one by the routing hash (`archive`); a reindex reads a sharded source per shard (`reader`) and
holds its writes with the write gate (`gate`).

May import: `retrieval.handle` and everything below it (transfer, evaluation, bulk, ingest, search, indexes,
spec, store, models); never `service` or above."""
