"""The PDF render worker: pages in order at the asked resolution, limits checked before rendering, a killed or
starved worker is a typed error for the file and the next file renders normally."""

from __future__ import annotations

import io

import pypdfium2 as pdfium
import pytest
from PIL import Image

from retrieval.errors import CorruptFileError, LimitExceededError
from retrieval.ingest.pages.render import PageRenderer, RenderedPage, RenderLimits, RenderOptions
from tests.fixtures.pdfs import pdf_bytes

TEXTS = ["first page", "", "third page\nsecond line"]


_LOW = RenderOptions(dpi=72)


def _render(data: bytes, opts: RenderOptions = _LOW, **limits: float) -> list[RenderedPage]:
    with PageRenderer("f.pdf", data, opts, RenderLimits(**limits)) as r:  # type: ignore[arg-type]
        return list(r)


def test_pages_come_in_order_with_text_png_and_thumbnail() -> None:
    data = pdf_bytes(TEXTS, rects={0: (100, 100, 200, 200), 2: (300, 500, 100, 50)})
    pages = _render(data, RenderOptions(dpi=144, thumbnail_px=64))
    assert [p.number for p in pages] == [1, 2, 3]
    assert [p.text.strip() for p in pages] == [t.strip() for t in TEXTS]
    for p in pages:
        image = Image.open(io.BytesIO(p.png))
        assert image.format == "PNG" and image.size == (p.width, p.height) == (1224, 1584)  # 612 x 792 pt at 2 px/pt
        thumb = Image.open(io.BytesIO(p.thumbnail))
        assert thumb.format == "JPEG" and max(thumb.size) == 64
    # the drawn rectangle is red where PDFium (in this process) renders it red
    reference = pdfium.PdfDocument(data)[0].render(scale=2).to_pil().convert("RGB")
    assert Image.open(io.BytesIO(pages[0].png)).convert("RGB").tobytes() == reference.tobytes()
    assert pages[0].png != pages[1].png != pages[2].png


def test_page_cap_and_absurd_page_size_are_refused_before_rendering() -> None:
    with pytest.raises(LimitExceededError) as cap:
        _render(pdf_bytes(["a", "b", "c"]), RenderOptions(max_pages=2))
    assert "page count" in cap.value.message and "3, over the limit of 2" in cap.value.message
    assert cap.value.param == "file" and cap.value.received == "f.pdf"
    with pytest.raises(LimitExceededError) as size:
        _render(pdf_bytes(["a", "b"], size=(612, 100_000)))
    assert "page 1" in size.value.message and "100000" in size.value.message


def test_corrupt_pdf_is_a_corrupt_file_error() -> None:
    good = pdf_bytes(["x"])
    with pytest.raises(CorruptFileError, match=r"f\.pdf"):
        _render(good[:64] + bytes(200))


def test_a_starved_or_out_of_memory_worker_is_a_typed_error_and_the_next_file_renders() -> None:
    slow = pdf_bytes(["a"] * 4, rects={i: (10, 10, 500, 700) for i in range(4)})
    with pytest.raises(LimitExceededError, match="render time"):
        _render(slow, RenderOptions(dpi=300), file_timeout_s=0.0)
    with pytest.raises((CorruptFileError, LimitExceededError)):  # RLIMIT_AS: the bitmap cannot be allocated
        _render(slow, RenderOptions(dpi=300, memory_bytes=1 << 20))
    assert [p.number for p in _render(slow)] == [1, 2, 3, 4]


def test_render_scale_keeps_huge_pages_under_the_pixel_cap() -> None:
    (page,) = _render(pdf_bytes(["big"], size=(10_000, 10_000)), RenderOptions(dpi=72, max_pixels=1_000_000))
    assert page.width * page.height <= 1_000_000 and page.width == page.height
