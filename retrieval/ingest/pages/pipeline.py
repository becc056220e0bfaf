"""PDF pages as page-image documents: render (worker process) -> embed -> commit + index, pipelined in windows.

Each page of a PDF becomes ONE document ``f"{file}#page={n}"`` with ONE chunk: its multi-vector is the
embedding of the rendered page image, its text is the page's text layer (BM25, and the dense / sparse models
of the collection, read it), so page image and page text fuse as one id in hybrid search. The page image and
its thumbnail are stored as files (:class:`~retrieval.store.page_files.PageFiles`) that the document
references.

Memory is bounded whatever the page count: the worker blocks once ``queue_pages`` rendered pages wait, and
the consumer holds at most two windows (the one being embedded and committed, and the next one being taken
from the worker). :class:`PageStats` counts the pages held (``max_in_flight``) and splits the time into
render (worker), embed and index (commit + index update).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from retrieval.ingest.documents import SourceDocument, content_hash
from retrieval.ingest.pages.render import PageRenderer, RenderedPage, RenderLimits, RenderOptions
from retrieval.spec.collection import PageSpec
from retrieval.store import ChunkRecord, DocumentRecord, PageImage
from retrieval.store.page_files import digest_of

__all__ = ["PagePipeline", "PageStats", "ingest_pdf", "page_id", "render_options"]

F32 = npt.NDArray[np.float32]
EmbedImages = Callable[[list[Image.Image]], Awaitable[list[F32]]]
"""Page images (RGB) -> one float32 (m, d) multi-vector each, rows L2-normalised."""
TextRecords = Callable[[list[SourceDocument]], Awaitable[list[DocumentRecord]]]
"""Page documents with text -> records whose single chunk carries the text-side vectors (dense, sparse)."""
Commit = Callable[[list[DocumentRecord], list[RenderedPage]], Awaitable[None]]
"""Write the pages' files, then commit the records and update the indexes (durable when it returns)."""
StoredHashes = Callable[[list[str]], Awaitable[dict[str, str]]]
"""Document ids -> content hashes already stored (unchanged pages are not embedded again)."""


def page_id(file: str, page: int) -> str:
    """The document id of page ``page`` (1-based) of ``file`` (the same as the text path's page ids).

    >>> page_id("docs/a.pdf", 3)
    'docs/a.pdf#page=3'
    """
    return f"{file}#page={page}"


def render_options(spec: PageSpec, memory_bytes: int = 1 << 30) -> RenderOptions:
    """The worker's settings from a collection's page settings and the worker's memory allowance."""
    return RenderOptions(
        dpi=spec.dpi, thumbnail_px=spec.thumbnail_px, max_pages=spec.max_pages, memory_bytes=memory_bytes
    )


@dataclass
class PageStats:
    """Where the time of a page ingestion went, and how many pages the consumer held at once."""

    pages: int = 0  # pages committed (or skipped as unchanged)
    render_s: float = 0.0  # worker seconds rendering and encoding images (overlaps the rest)
    embed_s: float = 0.0  # seconds embedding page images and page text
    index_s: float = 0.0  # seconds writing files, committing and updating the indexes
    in_flight: int = 0  # pages taken from the worker and not yet committed
    max_in_flight: int = 0  # the most pages held at once

    def took(self, n: int) -> None:
        self.in_flight += n
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def released(self, n: int) -> None:
        self.in_flight -= n


@dataclass(frozen=True)
class PagePipeline:
    """The stages a collection plugs in (the service binds them to its models, store and indexes)."""

    spec: PageSpec  # dpi, thumbnail size, page cap, window
    embed: EmbedImages  # page images -> multi-vectors
    text_records: TextRecords  # page text -> records with text-side vectors
    commit: Commit  # files, then store transaction, then indexes
    stored_hashes: StoredHashes  # for skipping unchanged pages
    limits: RenderLimits = field(default_factory=RenderLimits)  # worker time limits and queue bound
    memory_bytes: int = 1 << 30  # address space the render worker may add (RLIMIT_AS)
    stats: PageStats = field(default_factory=PageStats)  # filled as pages go through


def _decode(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB")


def _document(file: str, page: RenderedPage, metadata: Mapping[str, Any]) -> SourceDocument:
    meta = {**metadata, "source": file, "page": page.number}
    return SourceDocument(page_id(file, page.number), page.text, meta, source=file, page=page.number)


def _record(
    doc: SourceDocument, digest: str, text: DocumentRecord | None, mv: F32, page: RenderedPage
) -> DocumentRecord:
    """The page's record: one chunk with the text-side vectors (if any) and the image's multi-vector."""
    base = text.chunks[0] if text is not None else None
    chunk = ChunkRecord(
        text=doc.text,
        position=0,
        char_start=0,
        char_end=len(doc.text),
        page=page.number,
        dense=None if base is None else base.dense,
        multivector=np.asarray(mv, np.float32),
        sparse=None if base is None else base.sparse,
    )
    image = PageImage(digest, page.width, page.height)
    hashed = content_hash(doc, digest.encode())
    return DocumentRecord(doc.id, doc.text, dict(doc.metadata), hashed, doc.source, doc.page, (chunk,), image)


async def _window(
    pipe: PagePipeline, file: str, pages: list[RenderedPage], metadata: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """Embed and commit one window; returns (ids written, ids unchanged)."""
    docs = [_document(file, p, metadata) for p in pages]
    digests = [digest_of(p.png) for p in pages]
    stored = await pipe.stored_hashes([d.id for d in docs])
    fresh = [i for i, d in enumerate(docs) if stored.get(d.id) != content_hash(d, digests[i].encode())]
    skipped = [d.id for i, d in enumerate(docs) if i not in set(fresh)]
    if not fresh:
        return [], skipped
    started = time.perf_counter()
    images = await asyncio.to_thread(lambda: [_decode(pages[i].png) for i in fresh])
    with_text = [docs[i] for i in fresh if docs[i].text.strip()]
    texts, mvs = await asyncio.gather(pipe.text_records(with_text), pipe.embed(images))
    del images
    by_id = {r.id: r for r in texts}
    records = [
        _record(docs[i], digests[i], by_id.get(docs[i].id), mv, pages[i]) for i, mv in zip(fresh, mvs, strict=True)
    ]
    committed = time.perf_counter()
    pipe.stats.embed_s += committed - started
    await pipe.commit(records, [pages[i] for i in fresh])
    pipe.stats.index_s += time.perf_counter() - committed
    return [r.id for r in records], skipped


def _take(pages: Iterator[RenderedPage], n: int, stats: PageStats) -> list[RenderedPage]:
    """The next ``n`` pages from the worker (blocking: run in a thread), counted as held on arrival."""
    window = []
    for page in itertools.islice(pages, n):
        stats.took(1)
        window.append(page)
    return window


async def ingest_pdf(
    pipe: PagePipeline,
    file: str,
    data: bytes,
    metadata: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[str], list[str]]:
    """Render, embed and commit every page of the PDF ``data`` named ``file``; returns (ids, unchanged ids).

    Windows commit as they complete: when a later page fails (a timeout, a crash) the earlier windows stay
    written and the error (CorruptFileError / LimitExceededError naming the file) propagates. ``progress``
    gets ``(pages done, pages in the file)`` after each window.
    """
    opts = render_options(pipe.spec, pipe.memory_bytes)
    ids: list[str] = []
    skipped: list[str] = []
    with PageRenderer(file, data, opts, pipe.limits) as renderer:
        pages = iter(renderer)
        pending = asyncio.ensure_future(asyncio.to_thread(_take, pages, pipe.spec.window, pipe.stats))
        try:
            while window := await pending:
                pending = asyncio.ensure_future(asyncio.to_thread(_take, pages, pipe.spec.window, pipe.stats))
                done, same = await _window(pipe, file, window, metadata or {})
                ids += done
                skipped += same
                pipe.stats.pages += len(window)
                pipe.stats.render_s += sum(p.seconds for p in window)
                pipe.stats.released(len(window))
                del window
                if progress is not None:
                    progress(len(ids) + len(skipped), renderer.pages)
        finally:
            renderer.stop()
            with contextlib.suppress(Exception):
                await pending
    return ids, skipped
