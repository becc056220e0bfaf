"""A collection whose documents live in this process: its rows in the data directory's store, its indexes in
memory (with snapshots under `indexes/<name>/`), its page images in the shared page files.

Durability: a write is encoded first (outside any lock), then committed to SQLite in one transaction and
applied to the in-memory indexes under the collection's write lock, and only then acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.common import metrics
from retrieval.errors import AliasMovedError
from retrieval.handle.protocol import Answered, CollectionInfo, Encode, IngestResult, SourceReader, ids_not_in
from retrieval.indexes import IndexSet
from retrieval.ingest.pipeline import hash_document
from retrieval.search.hits import SearchRunner
from retrieval.spec.availability import Availability
from retrieval.spec.collection import CollectionSpec
from retrieval.spec.encoders import Encoders
from retrieval.store import ChunkRow, DocumentRecord, DocumentRow, PageImage, Store, VectorKind, WriteResult
from retrieval.store.page_files import PageBytes, PageFileKind, PageFiles
from retrieval.transfer import export_files, freeze

if TYPE_CHECKING:
    from retrieval.bulk import BulkTarget
    from retrieval.ingest.documents import SourceDocument
    from retrieval.models.registry import ModelRegistry

__all__ = ["LocalCollection", "LocalHome", "StoreReader"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalHome:
    """What the one-process collections of a data directory share."""

    store: Store  # the data directory's store (every local collection's rows)
    page_files: PageFiles  # rendered PDF pages, content-addressed
    data_dir: Path  # the data directory
    resolve: Callable[[str], str]  # a request's name -> the collection it means now (aliases)

    def snapshot_dir(self, name: str) -> Path:
        """Where collection `name`'s index snapshots live."""
        return self.data_dir / "indexes" / name


@dataclass
class LocalCollection:
    """A collection held in this process (`CollectionHandle` over one store and one `IndexSet`)."""

    spec: CollectionSpec  # its settings
    encoders: Encoders  # the served engines of its representations
    indexes: IndexSet  # its in-memory indexes
    availability: Availability  # what needs a model this process does not serve
    home: LocalHome  # the store and page files it shares with the others
    opened: str = "created"  # how it came up: "snapshot" | "rebuild" | "created"
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # every write commits under it

    @property
    def name(self) -> str:
        return self.spec.name

    def set_spec(self, spec: CollectionSpec) -> None:
        self.spec = spec
        self.indexes.spec = spec

    def info(self, aliases: list[str], building: str | None) -> CollectionInfo:
        store = self.home.store
        row = store.get_collection(self.name)
        stats = store.stats(self.name)
        sizes = {k.removesuffix("_bytes"): int(v) for k, v in stats.items() if k.endswith("_bytes")}
        storage = self.indexes.multivector_storage(self.encoders.multivector)
        status = self.availability.status(self.spec)
        return CollectionInfo(
            self.spec, row.documents, row.chunks, sizes, row.created_at, storage, status, aliases, building
        )

    def runner(self, models: ModelRegistry, *, allow_partial: bool = False) -> tuple[SearchRunner, Answered | None]:
        return SearchRunner(self.spec, self.encoders, self.indexes, self.home.store, models), None

    def reader(self) -> Store:
        return self.home.store

    def source_reader(self) -> SourceReader:
        return StoreReader(self.home.store, self.home.page_files, self.name)

    def page_file(self, digest: str, kind: PageFileKind) -> bytes | None:
        if not self.home.store.has_page_image(self.name, digest):
            return None
        return self.home.page_files.read(digest, kind)

    def bulk_target(self) -> BulkTarget:
        from retrieval.bulk import BulkTarget  # pyarrow: imported by a bulk load only

        return BulkTarget(self.name, self.spec, self.encoders, self.home.store, self.indexes)

    def hold_writes(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self.write_lock  # every write commits under it

    async def export(self, scratch: Path) -> list[tuple[str, Path]]:
        """From one consistent snapshot of the store and of the indexes (searches go on meanwhile)."""
        async with self.write_lock:  # no write between the store copy and the index snapshots
            frozen = await asyncio.to_thread(freeze, self.home.store, self.indexes, scratch)
        return await asyncio.to_thread(export_files, self.home.page_files, self.name, scratch, frozen)

    # -- writes ---------------------------------------------------------------------------------------
    async def write(self, docs: Sequence[SourceDocument], encode: Encode, asked: str) -> IngestResult:
        name, started = self.name, time.perf_counter()
        stored = await asyncio.to_thread(self.home.store.content_hashes, name, [d.id for d in docs])
        same = [stored.get(d.id) == hash_document(d, self.spec) for d in docs]  # unchanged: not re-encoded
        skipped = [d.id for d, s in zip(docs, same, strict=True) if s]
        fresh = [d for d, s in zip(docs, same, strict=True) if not s]
        records, truncated = await encode(fresh)
        metrics.observe(name, "ingest_encode", time.perf_counter() - started)
        written = await self.commit(records, asked=asked)
        log.info(
            "collection %s: wrote %d documents (%d unchanged) at seq %d in %.3f s",
            name,
            len(records),
            len(skipped),
            written.seq,
            time.perf_counter() - started,
        )
        chunks = sum(len(r.chunks) for r in records)
        return IngestResult([r.id for r in records], skipped + written.skipped, truncated, chunks, written.seq)

    async def write_pages(self, records: list[DocumentRecord], pages: Sequence[PageBytes], asked: str | None) -> None:
        await self.commit(records, pages, asked=asked)

    async def commit_records(
        self, records: list[DocumentRecord], deletes: Sequence[str], pages: Mapping[str, PageBytes] | None
    ) -> int:
        if deletes:
            async with self.write_lock:
                await self.remove(deletes)
        if not records:
            return self.home.store.last_seq()
        return (await self.commit(records, list((pages or {}).values()))).seq

    async def commit(
        self, records: list[DocumentRecord], pages: Sequence[PageBytes] = (), *, asked: str | None = None
    ) -> WriteResult:
        """Write `pages`' image files (fsynced), then commit `records` in one transaction, then index them.
        `asked`: the name the request used; if it is an alias that no longer points here, AliasMovedError."""
        name, store, files = self.name, self.home.store, self.home.page_files

        def write() -> WriteResult:
            if not pages:
                return store.write(name, records)
            with files.lock:  # no garbage collection between the files and their references
                for page in pages:
                    files.put(page.png, page.thumbnail)
                return store.write(name, records)

        async with self.write_lock:
            if asked is not None and self.home.resolve(asked) != name:
                raise AliasMovedError(asked, name)
            t0 = time.perf_counter()
            written = await asyncio.to_thread(write)
            rows = await asyncio.to_thread(store.get_chunks, name, written.added, vectors=self.spec.vector_kinds())
            await asyncio.to_thread(self.indexes.apply, rows, written.removed, written.seq)
            metrics.observe(name, "ingest_write", time.perf_counter() - t0)
        metrics.count_documents(name, len(records))
        return written

    async def delete(self, ids: Sequence[str], asked: str) -> int:
        async with self.write_lock:
            if self.home.resolve(asked) != self.name:  # a reindex re-pointed the alias meanwhile
                raise AliasMovedError(asked, self.name)
            written = await self.remove(ids)
        if self.encoders.visual and written.removed.size:
            await asyncio.to_thread(self.home.page_files.collect, self.home.store.page_digests)
        return int(written.removed.size)

    async def remove(self, ids: Sequence[str]) -> WriteResult:
        """Delete `ids` from the store and the indexes (the caller holds the write lock)."""
        written = await asyncio.to_thread(self.home.store.write, self.name, (), list(ids))
        await asyncio.to_thread(self.indexes.apply, [], written.removed, written.seq)
        return written

    # -- life cycle -----------------------------------------------------------------------------------
    async def drop(self, forget: Callable[[], None]) -> None:
        async with self.write_lock:
            await asyncio.to_thread(self.home.store.delete_collection, self.name)
            forget()
            await asyncio.to_thread(self.indexes.drop, self.home.snapshot_dir(self.name))
            if self.encoders.visual:
                await asyncio.to_thread(self.home.page_files.collect, self.home.store.page_digests)

    def save_snapshots(self) -> None:
        """First swap in a larger index kind where the collection has outgrown its own (built off the lock)."""
        try:
            self.indexes.upgrade(self.home.store, self.name)
            self.indexes.save(self.home.snapshot_dir(self.name))
        except OSError as exc:  # a failed snapshot loses nothing: the store replays at start
            log.warning("snapshot of %s failed: %s", self.name, exc)

    def backup(self, dest: Path) -> None:
        """Nothing: its rows and page files are in the data directory's backup."""

    def refresh_metrics(self) -> None:
        """Nothing: its figures are set as it changes."""


class StoreReader:
    """A collection of this process's store, as a reindex reads it (`SourceReader`)."""

    def __init__(self, store: Store, pages: PageFiles, name: str) -> None:
        self.store, self.pages, self.name = store, pages, name

    def documents_after(self, seq: int, cursor: str, limit: int) -> tuple[list[DocumentRow], int, str]:
        rows = self.store.documents_after(self.name, seq, cursor, limit)
        return (rows, rows[-1].seq, rows[-1].id) if rows else (rows, seq, cursor)

    def document_chunks(self, doc_ids: Sequence[str], vectors: Sequence[VectorKind]) -> dict[str, list[ChunkRow]]:
        return self.store.document_chunks(self.name, list(doc_ids), vectors=list(vectors))

    def page_images(self, doc_ids: Sequence[str]) -> dict[str, PageImage]:
        return self.store.page_images(self.name, list(doc_ids))

    def page_bytes(self, images: Mapping[str, str]) -> dict[str, PageBytes]:
        read = self.pages.read
        return {d: PageBytes(read(d, "image"), read(d, "thumbnail")) for d in set(images.values())}

    def document_ids(self) -> list[str]:
        return self.store.document_ids(self.name)

    def not_in(self, source: SourceReader) -> list[str]:
        if isinstance(source, StoreReader) and source.store is self.store:  # one SQL query over the one store
            return self.store.missing_from(self.name, source.name)
        return ids_not_in(self, source)

    def shares_pages(self, other: SourceReader) -> bool:
        return isinstance(other, StoreReader) and other.pages is self.pages
