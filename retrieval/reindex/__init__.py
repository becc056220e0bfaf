"""Reindexing a collection into a new one while it serves: the job (`job`: `Reindexer`, copy, catch up, swap
an alias under the source's write lock) and the records it copies (`records`: stored vectors, or encoded
again with the target's models).

May import: `retrieval.service` and everything below it; never `sdk` or `cli`."""

from retrieval.reindex.job import Reindexer, ReindexRequest

__all__ = ["ReindexRequest", "Reindexer"]
