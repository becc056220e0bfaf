"""A reindex job's batch: the target collection's records for some of the source's stored documents.

Everything comes from the store (text, metadata, page images, stored vectors), never from the original files.
Two ways, decided once per job by :func:`can_copy_vectors`:

- **copy**: the target keeps the source's chunking and the same model for every representation it keeps (only
  index, BM25, fusion, reranker or page settings change): chunks and their stored vectors are copied as they
  are, no model runs (and none needs to be served).
- **encode**: otherwise each document is chunked and encoded again by the target's models, as a write would;
  a page image document of a collection whose multi-vector model reads images is embedded again from its stored
  page image (and keeps it). Vectors a client supplied with a document are not kept (they came from a model
  the target may not use); the document's text is encoded instead.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from retrieval.errors import InvalidRequestError
from retrieval.ingest.documents import SourceDocument
from retrieval.spec.collection import CollectionSpec
from retrieval.store import ChunkRecord, ChunkRow, DocumentRecord, DocumentRow, PageImage

if TYPE_CHECKING:
    from retrieval.handle import SourceReader
    from retrieval.service import RetrievalService

__all__ = ["can_copy_vectors", "copied_records", "encoded_records"]


def can_copy_vectors(source: CollectionSpec, target: CollectionSpec) -> bool:
    """Whether the target's chunks and vectors equal the source's (same chunking, same model per kept kind)."""
    if source.chunking != target.chunking:
        return False
    return all(source.model_for(kind) == target.model_for(kind) for kind in target.vector_kinds())


def _chunk(row: ChunkRow) -> ChunkRecord:
    return ChunkRecord(
        row.text, row.position, row.char_start, row.char_end, row.page, row.dense, row.multivector, row.sparse
    )


def copied_records(source: SourceReader, target: CollectionSpec, docs: Sequence[DocumentRow]) -> list[DocumentRecord]:
    """Records of `docs` with their stored chunks and vectors, as the target keeps them (runs in a thread)."""
    ids = [d.id for d in docs]
    chunks = source.document_chunks(ids, target.vector_kinds())
    images = source.page_images(ids)
    return [
        DocumentRecord(
            d.id,
            d.text,
            d.metadata,
            d.content_hash,
            d.source,
            d.page,
            tuple(_chunk(c) for c in chunks.get(d.id, [])),
            images.get(d.id),
        )
        for d in docs
    ]


def _source(doc: DocumentRow) -> SourceDocument:
    return SourceDocument(doc.id, doc.text, dict(doc.metadata), doc.source, doc.page)


def _decode(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB")


async def _page_records(
    service: RetrievalService,
    source: SourceReader,
    target: str,
    docs: Sequence[DocumentRow],
    images: dict[str, PageImage],
) -> list[DocumentRecord]:
    """Page image documents embedded again by the target's image model, text-side vectors from their text."""
    pipe = service.page_pipeline(target)
    files = await asyncio.to_thread(source.page_bytes, {d.id: images[d.id].digest for d in docs})
    pictures = await asyncio.to_thread(lambda: [_decode(files[images[d.id].digest].png) for d in docs])
    with_text = [_source(d) for d in docs if d.text.strip()]
    texts, mvs = await asyncio.gather(pipe.text_records(with_text), pipe.embed(pictures))
    by_id = {r.id: r for r in texts}
    out = []
    for doc, mv in zip(docs, mvs, strict=True):
        base = by_id[doc.id].chunks[0] if doc.id in by_id else None
        chunk = ChunkRecord(
            doc.text,
            0,
            0,
            len(doc.text),
            doc.page,
            None if base is None else base.dense,
            np.asarray(mv, np.float32),
            None if base is None else base.sparse,
        )
        image = images[doc.id]
        out.append(
            DocumentRecord(
                doc.id, doc.text, dict(doc.metadata), doc.content_hash, doc.source, doc.page, (chunk,), image
            )
        )
    return out


async def encoded_records(
    service: RetrievalService, reader: SourceReader, source: str, target: str, docs: Sequence[DocumentRow]
) -> list[DocumentRecord]:
    """Records of `docs` (of collection `source`, read through `reader`) chunked and encoded by the target's
    models (page images embedded again when the target's multi-vector model reads images; otherwise a page keeps
    its image and is encoded from its text)."""
    images = await asyncio.to_thread(reader.page_images, [d.id for d in docs])
    visual = service.visual(target)
    pages = [d for d in docs if d.id in images and visual]
    texts = [d for d in docs if not (d.id in images and visual)]
    for doc in texts:
        if not doc.text.strip():
            raise InvalidRequestError(
                f"document `{doc.id}` of `{source}` has no text and `{target}`'s models do not read page images: "
                "it cannot be rebuilt from the stored documents",
                param="multivector_model",
                received=doc.id,
            )
    out = await service.encode_documents(target, [_source(d) for d in texts]) if texts else []
    out = [_with_image(r, images.get(r.id)) for r in out]
    if pages:
        out += await _page_records(service, reader, target, pages, images)
    return out


def _with_image(record: DocumentRecord, image: PageImage | None) -> DocumentRecord:
    if image is None:
        return record
    return DocumentRecord(
        record.id, record.text, record.metadata, record.content_hash, record.source, record.page, record.chunks, image
    )
