"""The service built once at start: `RetrievalService`, a thin facade over one data directory whose parts each
own one concern (the catalog of collections and aliases, writes, queries, export/import, administration).

May import: `retrieval.sharding`, `retrieval.transfer`, `retrieval.evaluation.measures` and everything below them;
never `distributed` (Ray), `reindex`, `sdk` or `cli`."""

from retrieval.service.facade import CollectionInfo, IngestResult, RetrievalService

__all__ = ["CollectionInfo", "IngestResult", "RetrievalService"]
