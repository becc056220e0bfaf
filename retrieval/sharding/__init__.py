"""Sharded collections: documents spread over S shards by a hash of their id, each shard a store and indexes of
its own (run by a Ray actor, `retrieval.distributed.shards`), searched by fanning out and merging exactly.
Nothing here imports Ray. Import the submodules directly (`routing` is imported by the collection settings)."""
