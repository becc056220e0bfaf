"""The page pipeline on a 200-page PDF with stand-in stages: every page committed once, in order, with its
image's digest, and never more than two windows of pages held (render, embed and commit overlap)."""

from __future__ import annotations

import asyncio
import hashlib
import io

import numpy as np
from PIL import Image

from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.pages.pipeline import PagePipeline, ingest_pdf
from retrieval.ingest.pages.render import RenderedPage, RenderLimits
from retrieval.spec.collection import PageSpec
from retrieval.store import DocumentRecord
from tests.fixtures.pdfs import pdf_bytes

N = 200


def _grid(image: Image.Image) -> np.ndarray:
    """A stand-in multi-vector: the 4 x 4 mean colours, rows L2-normalised, float32 (16, 3)."""
    small = np.asarray(image.resize((4, 4), Image.Resampling.BOX), np.float32).reshape(16, 3) + 1.0
    return small / np.linalg.norm(small, axis=1, keepdims=True)


def test_two_hundred_pages_stream_through_in_bounded_windows() -> None:
    data = pdf_bytes([f"page {i}" if i % 7 else "" for i in range(N)], rects={i: (i, i, 50, 50) for i in range(N)})
    committed: list[DocumentRecord] = []
    files: list[RenderedPage] = []
    held: list[int] = []
    progress: list[tuple[int, int]] = []

    async def embed(images: list[Image.Image]) -> list[np.ndarray]:
        held.append(pipe.stats.in_flight)
        return [_grid(i) for i in images]

    async def text_records(docs: list[SourceDocument]) -> list[DocumentRecord]:
        assert all(d.text.strip() for d in docs)  # empty pages never reach the text models
        return []

    async def commit(records: list[DocumentRecord], pages: list[RenderedPage]) -> None:
        committed.extend(records)
        files.extend(pages)

    async def stored(ids: list[str]) -> dict[str, str]:
        return {}

    pipe = PagePipeline(PageSpec(dpi=36, window=8), embed, text_records, commit, stored, RenderLimits(queue_pages=2))
    ids, skipped = asyncio.run(ingest_pdf(pipe, "big.pdf", data, {"tag": 1}, lambda d, t: progress.append((d, t))))
    assert ids == [f"big.pdf#page={n}" for n in range(1, N + 1)] and skipped == []
    assert pipe.stats.pages == N and pipe.stats.max_in_flight <= 2 * 8 and max(held) <= 2 * 8
    assert progress[-1] == (N, N) and len(progress) == N // 8
    for record, page in zip(committed, files, strict=True):
        assert record.image is not None and record.image.digest == hashlib.sha256(page.png).hexdigest()
        assert record.metadata == {"tag": 1, "source": "big.pdf", "page": page.number}
        (chunk,) = record.chunks
        expected = _grid(Image.open(io.BytesIO(page.png)).convert("RGB"))
        np.testing.assert_array_equal(chunk.multivector, expected)
        assert chunk.text == record.text == (f"page {page.number - 1}" if (page.number - 1) % 7 else "")
