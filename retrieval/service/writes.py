"""Writes: documents (upserts by id), deletes, uploaded files, bulk loads, and the steps a reindex job writes
with. Every write is encoded first (outside any lock), committed to the store in one transaction and applied
to the indexes under the collection's write lock, and only then acknowledged."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from retrieval.common import metrics
from retrieval.errors import AliasMovedError, InvalidRequestError
from retrieval.handle import CollectionHandle, IngestResult
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.pages.pipeline import PagePipeline, PageStats
from retrieval.ingest.pages.render import RenderedPage, RenderLimits
from retrieval.ingest.pages.uploads import upload_pages
from retrieval.ingest.pipeline import finish, plan_ingest
from retrieval.ingest.uploads import UploadedFile, UploadResult, ingest_files, parse_uploads
from retrieval.service.catalog import Catalog
from retrieval.spec.encoders import image_call
from retrieval.store import DocumentRecord, check_document_id
from retrieval.store.page_files import PageBytes

if TYPE_CHECKING:  # pyarrow is imported only by a bulk load
    from retrieval.bulk import BulkInput, BulkOptions, BulkReport

__all__ = ["FileProgress", "Metadata", "PageMap", "Writes"]

Metadata = Mapping[str, Any] | None
"""Metadata added to every document of an upload."""

FileProgress = Callable[[int, int], None] | None
"""Called with (files done, files) as an upload goes."""

PageMap = Mapping[str, PageBytes] | None
"""Page image files by digest, as a reindex carries them to a target that does not share its source's."""

log = logging.getLogger(__name__)


class Writes:
    """The write side of the service."""

    def __init__(self, catalog: Catalog, render_limits: RenderLimits | None = None) -> None:
        self.catalog = catalog
        self.render_limits = render_limits or RenderLimits()  # PDF render worker time limits
        self.page_stats: dict[str, PageStats] = {}  # collection -> its last page upload's figures

    def writable(self, name: str) -> CollectionHandle:
        """The collection (resolved), if it takes writes: no reindex job is building it, its models are served."""
        handle = self.catalog.handle(name)
        self.catalog.check_not_building(name)
        handle.availability.check_write()
        return handle

    async def add_documents(self, name: str, docs: Sequence[SourceDocument]) -> IngestResult:
        """Encode, commit and index `docs` (upsert by id); returns once the write is durable and searchable.

        Through an alias that a reindex re-points while the write waits for its lock, the write is done again
        against the alias's new collection (it never lands in the collection the alias has just left)."""
        for _ in range(3):
            try:
                return await self._add_documents(name, docs)
            except AliasMovedError:
                continue
        return await self._add_documents(name, docs)

    async def _add_documents(self, asked: str, docs: Sequence[SourceDocument]) -> IngestResult:
        handle = self.writable(self.catalog.resolve(asked))
        _check_unique(docs)
        return await handle.write(docs, functools.partial(self._encode, handle), asked)

    async def _encode(
        self, handle: CollectionHandle, docs: Sequence[SourceDocument], background: bool = False
    ) -> tuple[list[DocumentRecord], list[str]]:
        """Chunk and encode `docs` for the collection: (records, ids cut at the model's limit). `background`:
        yield to every other encode (a reindex)."""
        plan = await asyncio.to_thread(plan_ingest, docs, handle.spec, handle.encoders)
        names = list(plan.calls)
        runs = (self.catalog.models.get(e).run(plan.calls[e], background=background) for e in names)
        done = await asyncio.gather(*runs)
        return finish(plan, dict(zip(names, done, strict=True))), plan.truncated

    async def delete_documents(self, name: str, ids: Sequence[str]) -> int:
        """Delete by id (unknown ids are ignored); returns the number of chunks removed."""
        while True:
            target = self.catalog.resolve(name)
            handle = self.catalog.handle(target)
            self.catalog.check_not_building(target)
            try:
                return await handle.delete(ids, name)
            except AliasMovedError:  # a reindex re-pointed the alias meanwhile: delete in its new collection
                continue

    async def add_files(
        self,
        name: str,
        files: Sequence[UploadedFile],
        metadata: Mapping[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> UploadResult:
        """Parse uploaded files (a bad file is reported, the rest go in) and write their documents in batches.

        In a collection whose multi-vector model reads images, PDFs become page images (`upload_pages`). Text
        batches resolve an alias each (after a reindex swap they go to the alias's new collection); page windows
        are embedded by this collection's model, so one committed after a swap is refused (AliasMovedError,
        409: the upload is safe to retry, unchanged pages are skipped)."""
        handle = self.writable(self.catalog.resolve(name))
        if handle.encoders.visual:
            pipe = self._page_pipeline(handle, name)  # each page to the store (or shard) that owns its document
            text = functools.partial(self._add_parsed, name, metadata=metadata)
            return await upload_pages(files, metadata, pipe, lambda fs, p: text(fs, progress=p), progress)
        return await self._add_parsed(name, files, metadata, progress)

    async def _add_parsed(
        self,
        name: str,
        files: Sequence[UploadedFile],
        metadata: Mapping[str, Any] | None,
        progress: Callable[[int, int], None] | None,
    ) -> UploadResult:
        docs, reports = await asyncio.to_thread(parse_uploads, files, metadata)

        async def write(batch: list[SourceDocument]) -> tuple[list[str], list[str]]:
            done = await self.add_documents(name, batch)
            return done.ids, done.skipped

        return await ingest_files(docs, reports, write, progress)

    def page_pipeline(self, name: str) -> PagePipeline:
        """The page stages of collection `name` (its models read images): what a reindex embeds pages with."""
        return self._page_pipeline(self.catalog.handle(name))

    def _page_pipeline(self, coll: CollectionHandle, asked: str | None = None) -> PagePipeline:
        """The page stages bound to this collection's models, store and indexes."""
        engine = coll.encoders.multivector
        assert engine is not None
        text_spec = msgspec.structs.replace(
            coll.spec, chunking=msgspec.structs.replace(coll.spec.chunking, mode="truncate")
        )
        text_encoders = dataclasses.replace(coll.encoders, multivector=None)
        models = self.catalog.models

        async def embed(images: list[Any]) -> list[Any]:
            (result,) = await engine.run([image_call(engine, images, "document")])
            return list(result.multivectors())

        async def text_records(docs: list[SourceDocument]) -> list[DocumentRecord]:
            if not docs:
                return []
            plan = await asyncio.to_thread(plan_ingest, docs, text_spec, text_encoders)
            names = list(plan.calls)
            done = await asyncio.gather(*(models.get(e).run(plan.calls[e]) for e in names))
            return finish(plan, dict(zip(names, done, strict=True)))

        async def commit(records: list[DocumentRecord], pages: list[RenderedPage]) -> None:
            await coll.write_pages(records, [PageBytes(p.png, p.thumbnail) for p in pages], asked)

        async def stored(ids: list[str]) -> dict[str, str]:
            return await asyncio.to_thread(coll.reader().content_hashes, coll.name, ids)  # the owning store(s)

        stats = self.page_stats[coll.name] = PageStats()
        return PagePipeline(coll.spec.pages, embed, text_records, commit, stored, self.render_limits, stats=stats)

    # -- a reindex job's steps ------------------------------------------------------------------------
    async def encode_documents(self, name: str, docs: Sequence[SourceDocument]) -> list[DocumentRecord]:
        """Chunk and encode `docs` for collection `name` as a write would, without writing (a reindex job's
        encode step: no write gate, and its encoding yields to searches and writes)."""
        return (await self._encode(self.catalog.handle(name), docs, background=True))[0]

    async def commit_records(
        self, name: str, records: list[DocumentRecord], deletes: Sequence[str] = (), pages: PageMap = None
    ) -> int:
        """Commit and index ready records (and deletes) in collection `name`: a reindex job's write, past the
        gate that keeps everyone else out of the collection it builds. `pages`: the page image files the records
        reference, where the collection does not share them with its source. Returns the write's seq."""
        return await self.catalog.handle(name).commit_records(records, deletes, pages)

    # -- bulk -----------------------------------------------------------------------------------------
    def bulk_load_sync(
        self,
        name: str,
        inputs: Sequence[BulkInput],
        options: BulkOptions | None = None,
        progress: Callable[[BulkReport], None] | None = None,
    ) -> BulkReport:
        """Load Parquet / JSONL / Arrow rows in large batches (`retrieval.bulk`); the caller holds no lock other
        writers of `name` wait on (scripts, `retrieval load --data-dir`); the server uses `bulk_load`."""
        from retrieval.bulk import bulk_load

        name = self.catalog.resolve(name)
        target = self.writable(name).bulk_target()
        report = bulk_load(target, inputs, options, progress)
        metrics.count_documents(name, report.documents)
        log.info(
            "collection %s: bulk load of %d rows: %d documents written, %d unchanged, %d rows refused, %.2f s",
            name,
            report.rows,
            report.documents,
            report.unchanged,
            report.failed,
            report.seconds,
        )
        return report

    async def bulk_load(self, name: str, inputs: Sequence[BulkInput], options: BulkOptions | None = None) -> BulkReport:
        """`bulk_load_sync` in a worker thread, holding the collection's write lock (searches go on)."""
        name = self.catalog.resolve(name)
        async with self.writable(name).write_lock:
            return await asyncio.to_thread(self.bulk_load_sync, name, inputs, options)


def _check_unique(docs: Sequence[SourceDocument]) -> None:
    ids = [check_document_id(d.id, "documents.id") for d in docs]  # before anything is encoded
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InvalidRequestError(
            f"document id `{dup}` appears twice in one request", param="documents.id", received=dup
        )
    if not docs:
        raise InvalidRequestError("give at least one document", param="documents")
