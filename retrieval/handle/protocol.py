"""What every collection handle answers, local or sharded (as Qdrant's one shard trait over local, remote and
proxy shards), and the values it answers in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from retrieval.spec.availability import Availability, RepresentationStatus
from retrieval.spec.collection import CollectionSpec
from retrieval.spec.encoders import Encoders

if TYPE_CHECKING:
    from retrieval.bulk import BulkTarget
    from retrieval.ingest.documents import SourceDocument
    from retrieval.models.registry import ModelRegistry
    from retrieval.search.hits import SearchRunner
    from retrieval.store import ChunkRow, DocumentRecord, DocumentRow, PageImage, Store, VectorKind
    from retrieval.store.page_files import PageBytes, PageFileKind

__all__ = [
    "Answered",
    "CollectionHandle",
    "CollectionInfo",
    "Encode",
    "IngestResult",
    "ShardStatus",
    "SourceReader",
    "ids_not_in",
]

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


class SourceReader(Protocol):
    """The reads a reindex makes of one collection, wherever its documents live (each runs in a worker thread).
    A scan's cursor is `(seq, text)`: one store's is its last document's `(seq, id)`; a sharded collection keeps
    one `(seq, id)` per shard in the text (`retrieval.sharding.reader`)."""

    def documents_after(self, seq: int, cursor: str, limit: int) -> tuple[list[DocumentRow], int, str]:
        """Up to `limit` documents after the cursor `(seq, cursor)`, and the cursor after them."""
        ...

    def document_chunks(self, doc_ids: Sequence[str], vectors: Sequence[VectorKind]) -> dict[str, list[ChunkRow]]:
        """`{doc_id: its chunks by position}`."""
        ...

    def page_images(self, doc_ids: Sequence[str]) -> dict[str, PageImage]:
        """`{doc_id: PageImage}` for the page image documents among `doc_ids`."""
        ...

    def page_bytes(self, images: Mapping[str, str]) -> dict[str, PageBytes]:
        """`{digest: files}` for `images` (doc_id -> the digest its page image has)."""
        ...

    def document_ids(self) -> list[str]:
        """Every live document id, ascending."""
        ...

    def not_in(self, source: SourceReader) -> list[str]:
        """Ids of this collection's documents that `source` does not hold (deleted there since a copy)."""
        ...

    def shares_pages(self, other: SourceReader) -> bool:
        """Whether `other` keeps its page files where this collection does (a copy between the two carries no
        page bytes)."""
        ...


def ids_not_in(target: SourceReader, source: SourceReader) -> list[str]:
    """Ids of `target`'s documents that `source` does not hold, by comparing both id lists (ascending)."""
    return sorted(set(target.document_ids()) - set(source.document_ids()))


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
        """Held by a settings change (and, in one store, by every write; `hold_writes` keeps writes out either way)."""

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
        """The store its rows are read from (documents, chunks by id, content hashes)."""

    def source_reader(self) -> SourceReader:
        """What a reindex reads it through (cursor scans, chunks with vectors, page files)."""

    def page_file(self, digest: str, kind: PageFileKind) -> bytes | None:
        """The PNG or thumbnail of page image `digest` if a document of the collection references it, else None."""

    def bulk_target(self) -> BulkTarget:
        """What a bulk load writes through."""

    def hold_writes(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Held, no write to the collection commits (the writes under way end first): a reindex's last step
        holds its source's."""

    async def export(self, scratch: Path) -> list[tuple[str, Path]]:
        """Write its archive files (`retrieval.transfer.archive`) into the empty folder `scratch`; returns the
        (member name, file) pairs of the archive, the manifest first."""

    async def write(self, docs: Sequence[SourceDocument], encode: Encode, asked: str) -> IngestResult:
        """Upsert `docs` (ids unique, checked): unchanged ones skipped, the rest encoded with `encode` and
        committed. `asked`: the name the request used (AliasMovedError when that alias no longer points here)."""

    async def write_pages(self, records: list[DocumentRecord], pages: Sequence[PageBytes], asked: str | None) -> None:
        """Commit page image records with the files they reference (`pages`, fsynced before the commit names
        them). `asked`: as `write` (None: no alias check)."""

    async def commit_records(
        self, records: list[DocumentRecord], deletes: Sequence[str], pages: Mapping[str, PageBytes] | None
    ) -> int:
        """Commit ready records and deletes: a reindex job's write to the collection it builds (no alias check,
        no gate: no one else writes to it). `pages`: digest -> the files the records reference, where the
        collection does not share its source's. Returns the write's seq."""

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
