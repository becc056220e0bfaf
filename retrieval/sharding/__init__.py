"""Sharded collections: documents spread over S shards by a hash of their id, each shard a store and indexes of
its own (run by a Ray actor, `retrieval.distributed.shards`), searched by fanning out and merging exactly.
`handle` puts a sharded collection behind the one collection handle and decides where a collection's
documents live (`ShardPlacement`): the only place outside `distributed/` that tells local and sharded apart.
Nothing here imports Ray. Import the submodules directly.

May import: `retrieval.handle` and everything below it (bulk, ingest, search, indexes, spec, store, models);
never `transfer`, `evaluation`, `service` or above."""
