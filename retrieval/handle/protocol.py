"""What every collection handle answers, local or sharded (as Qdrant's one shard trait over local, remote and
proxy shards), and the values it answers in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from retrieval.spec.availability import Availability, RepresentationStatus
from retrieval.spec.collection import CollectionSpec
from retrieval.spec.encoders import Encoders

if TYPE_CHECKING:
    from retrieval.bulk import BulkTarget
    from retrieval.handle.local import LocalCollection
    from retrieval.ingest.documents import SourceDocument
    from retrieval.models.registry import ModelRegistry
    from retrieval.search.hits import SearchRunner
    from retrieval.store import DocumentRecord, Store

__all__ = ["Answered", "CollectionHandle", "CollectionInfo", "Encode", "IngestResult", "ShardStatus"]

Encode = Callable[["Sequence[SourceDocument]"], Awaitable[tuple["list[DocumentRecord]", list[str]]]]
"""Chunk and encode documents for a collection: (records, ids cut at the model's limit)."""

Answered = Callable[[], list[int]]
"""After a search, the shards that answered."""


@dataclass(frozen=True)
class ShardStatus:
    """One shard as `GET /v1/collections/{name}` shows it."""

    shard: int  # its index
    host: str  # the node it is pinned to
    node: str  # the Ray node id it runs on ("" when down)
    state: str  # "alive" | "unavailable"
    documents: int = 0  # live documents (0 when down)
    chunks: int = 0  # live chunks
    bytes: int = 0  # stored bytes, every representation
    reason: str | None = None  # why unavailable


@dataclass(frozen=True)
class CollectionInfo:
    """A collection's settings and sizes."""

    spec: CollectionSpec  # its settings
    documents: int  # live documents
    chunks: int  # live chunks
    bytes: dict[str, int]  # stored bytes per representation (dense, multivector, sparse, text)
    created_at: float  # seconds since the epoch
    storage: dict[str, float] = field(default_factory=dict)  # multi-vector index bytes/doc: expected, actual
    available: dict[str, RepresentationStatus] = field(default_factory=dict)  # per representation, + write
    aliases: list[str] = field(default_factory=list)  # other names of the collection
    building: str | None = None  # the reindex job building it, while one does
    shards: list[ShardStatus] = field(default_factory=list)  # a sharded collection's shards: node, sizes, state


@dataclass(frozen=True)
class IngestResult:
    """What one acknowledged write did."""

    ids: list[str]  # document ids written (new or replaced)
    skipped: list[str] = field(default_factory=list)  # ids whose content was unchanged (not re-encoded)
    truncated: list[str] = field(default_factory=list)  # ids cut at the model's limit (truncate mode)
    chunks: int = 0  # chunks written
    seq: int = 0  # store sequence number of the write


class CollectionHandle(Protocol):
    """One open collection as the service holds it. Checks that do not depend on where the documents live (the
    name, a reindex building it, served models, unique ids) are the caller's; a handle does the rest."""

    @property
    def name(self) -> str:
        """The collection's name."""

    @property
    def spec(self) -> CollectionSpec:
        """Its settings."""

    @property
    def encoders(self) -> Encoders:
        """The served engines of its representations (None where a model is not served)."""

    @property
    def availability(self) -> Availability:
        """What needs a model this process does not serve."""

    @property
    def write_lock(self) -> asyncio.Lock:
        """Held by every change of the collection (writes, settings)."""

    @property
    def opened(self) -> str:
        """How it came up: "snapshot", "rebuild", "created", "shards"."""

    def set_spec(self, spec: CollectionSpec) -> None:
        """Serve new search defaults (the caller has stored them)."""

    def info(self, aliases: list[str], building: str | None) -> CollectionInfo:
        """Its settings and sizes now."""

    def runner(self, models: ModelRegistry, *, allow_partial: bool = False) -> tuple[SearchRunner, Answered | None]:
        """A search runner over its documents, and (sharded) which shards answered the last search."""

    def reader(self) -> Store:
        """The store its rows are read from (documents, chunks by id)."""

    def bulk_target(self) -> BulkTarget:
        """What a bulk load writes through."""

    def local(self) -> LocalCollection:
        """Itself, for the operations that exist for one-process collections only (page images, export, import,
        reindex); InvalidRequestError naming the collection otherwise."""

    async def write(self, docs: Sequence[SourceDocument], encode: Encode, asked: str) -> IngestResult:
        """Upsert `docs` (ids unique, checked): unchanged ones skipped, the rest encoded with `encode` and
        committed. `asked`: the name the request used (AliasMovedError when that alias no longer points here)."""

    async def delete(self, ids: Sequence[str], asked: str) -> int:
        """Delete by id (unknown ids ignored); the chunks removed. AliasMovedError as `write`."""

    async def drop(self, forget: Callable[[], None]) -> None:
        """Delete the collection's documents, rows and indexes; `forget` runs once the store no longer has it."""

    def save_snapshots(self) -> None:
        """Write its changed index snapshots (a failure loses nothing: the store replays at start)."""

    def backup(self, dest: Path) -> None:
        """Copy what the data directory's backup does not hold into `dest`."""

    def refresh_metrics(self) -> None:
        """Update its figures on `/metrics` that are only known by asking (shard states)."""
