"""`/v1/collections` bodies: create a collection, and the collection object every collection route answers."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from retrieval.search.fusion import FusionConfig
from retrieval.service import CollectionInfo
from retrieval.spec.collection import ChunkingSpec, CollectionUpdate, IndexSpec, PageSpec

__all__ = [
    "Availability",
    "CollectionDeleted",
    "CollectionList",
    "CollectionObject",
    "CreateCollection",
    "ImportedCollection",
    "ShardObject",
    "UpdateCollection",
    "collection_object",
]


class CreateCollection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/collections`: the fields of `retrieval.spec.collection.CollectionSpec`. A body that names none of the
    three models (not even as null) gets the server's default dense model, with BM25."""

    name: str  # [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 characters
    dense_model: str | msgspec.UnsetType | None = msgspec.UNSET  # served dense model; absent: the default (see above)
    multivector_model: str | msgspec.UnsetType | None = msgspec.UNSET  # served model for token vectors (ColBERT)
    sparse_model: str | msgspec.UnsetType | None = msgspec.UNSET  # served model for sparse weights (BGE-M3)
    bm25: bool = True  # keep a BM25 index over the chunk text
    reranker: str | None = None  # default rerank model (cross-encoder or late-interaction)
    chunking: ChunkingSpec = ChunkingSpec()  # {mode: split|truncate, max_tokens, overlap}
    index: IndexSpec = IndexSpec()  # index settings per representation
    fusion: FusionConfig = FusionConfig()  # default fusion for hybrid search
    pages: PageSpec = PageSpec()  # PDF page rendering {dpi, thumbnail_px, max_pages, window} (image models)
    candidates: int = 100  # default candidates per representation before fusion and rerank
    rerank_depth: int = 0  # default rerank depth when a search names no rerank (0 = none)
    shards: int = 1  # spread the documents over this many shard actors (more than 1 needs `serve --ray`)

    def fields(self) -> dict[str, Any]:
        """The fields given (absent models left out: `RetrievalService.new_spec` decides what they default to)."""
        given: dict[str, Any] = msgspec.to_builtins(self)
        return given


class Availability(msgspec.Struct, frozen=True, omit_defaults=True):
    """Whether one representation (or `write`, or `rerank`) works with the models this server serves."""

    available: bool  # false when the model it needs is not served
    model: str | None = None  # the model it needs (none for BM25)
    reason: str | None = None  # why not, when unavailable


class ShardObject(msgspec.Struct, frozen=True, omit_defaults=True):
    """One shard of a sharded collection."""

    shard: int  # its index (documents go to shard blake2b(id) mod shards)
    host: str  # the host it is pinned to (node label `retrieval-host`, or the node's IP address)
    state: Literal["alive", "unavailable"]  # unavailable: restarting, or its node is gone
    node: str = ""  # the Ray node id it runs on
    documents: int = 0  # live documents
    chunks: int = 0  # live chunks
    bytes: int = 0  # stored bytes, every representation
    reason: str | None = None  # why it is unavailable


class CollectionObject(msgspec.Struct, frozen=True, kw_only=True):
    """A collection: its settings, sizes and searchable modes."""

    name: str  # the collection's name
    dense_model: str | None  # served model for dense vectors
    multivector_model: str | None  # served model for token vectors
    sparse_model: str | None  # served model for sparse weights
    bm25: bool  # whether a BM25 index is kept
    reranker: str | None  # default rerank model
    chunking: ChunkingSpec  # how long text is cut
    index: IndexSpec  # index settings
    fusion: FusionConfig  # default hybrid fusion
    pages: PageSpec  # PDF page rendering settings (used when the multi-vector model reads images)
    candidates: int  # default candidates per representation before fusion and rerank
    rerank_depth: int  # default rerank depth when a search names no rerank (0 = none)
    documents: int  # live documents
    chunks: int  # live chunks
    bytes: dict[str, int]  # stored bytes per representation: dense, multivector, sparse, text, metadata
    created_at: float  # seconds since the epoch
    modes: list[str]  # searchable single modes (`hybrid` fuses them all)
    storage: dict[str, float] = {}  # multi-vector index: expected_bytes_per_doc, actual_bytes_per_doc, tokens_per_doc
    available: dict[str, Availability] = {}  # per representation (+ write, rerank): served or why not
    aliases: list[str] = []  # other names of the collection
    building: str | None = None  # the reindex job building it (it takes no other writes until done)
    shards: int = 1  # shard actors holding its documents (1: this process)
    shard_status: list[ShardObject] = []  # a sharded collection's shards: host, node, state, sizes
    object: Literal["collection"] = "collection"  # the object type


class ImportedCollection(CollectionObject, frozen=True, kw_only=True):
    """`POST /v1/collections/import`: the collection restored, and where each of its indexes came from: the
    archive's snapshot, or built from the imported rows (the archive had none, or a damaged one, or one from other
    index settings)."""

    indexes: dict[str, Literal["snapshot", "rebuilt"]] = {}  # family -> from the archive's snapshot, or rebuilt


def collection_object(info: CollectionInfo) -> CollectionObject:
    """Domain info -> the wire object."""
    spec = info.spec
    return CollectionObject(
        name=spec.name,
        dense_model=spec.dense_model,
        multivector_model=spec.multivector_model,
        sparse_model=spec.sparse_model,
        bm25=spec.bm25,
        reranker=spec.reranker,
        chunking=spec.chunking,
        index=spec.index,
        fusion=spec.fusion,
        pages=spec.pages,
        candidates=spec.candidates,
        rerank_depth=spec.rerank_depth,
        documents=info.documents,
        chunks=info.chunks,
        bytes=dict(info.bytes),
        created_at=info.created_at,
        modes=list(spec.modes()),
        storage=dict(info.storage),
        available={k: Availability(v.available, v.model, v.reason) for k, v in info.available.items()},
        aliases=list(info.aliases),
        building=info.building,
        shards=spec.shards,
        shard_status=[
            ShardObject(s.shard, s.host, s.state, s.node, s.documents, s.chunks, s.bytes, s.reason)  # type: ignore[arg-type]
            for s in info.shards
        ],
    )


class UpdateCollection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`PATCH /v1/collections/{name}`: search defaults that change without reindexing; absent fields stay."""

    fusion: FusionConfig | msgspec.UnsetType = msgspec.UNSET  # default hybrid fusion {method, k, weights}
    reranker: str | msgspec.UnsetType | None = msgspec.UNSET  # default rerank model; null = none
    candidates: int | msgspec.UnsetType = msgspec.UNSET  # default candidates per representation
    rerank_depth: int | msgspec.UnsetType = msgspec.UNSET  # default rerank depth (0 = no default rerank)

    def to_update(self) -> CollectionUpdate:
        return CollectionUpdate(self.fusion, self.reranker, self.candidates, self.rerank_depth)


class CollectionList(msgspec.Struct, frozen=True):
    """`GET /v1/collections`."""

    data: list[CollectionObject]  # every collection, by name
    object: Literal["list"] = "list"  # the object type


class CollectionDeleted(msgspec.Struct, frozen=True):
    """`DELETE /v1/collections/{name}`."""

    id: str  # the deleted collection's name
    object: Literal["collection"] = "collection"  # the object type
    deleted: bool = True  # always true (an unknown name is a 404)
