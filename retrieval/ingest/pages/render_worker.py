"""The body of the PDF render worker process: checks every page, then renders them one by one into a queue.

Runs in a child process started by :mod:`retrieval.ingest.pages.render` (forkserver context); it never touches the
store, the models or the event loop. Before any rendering it caps its own address space
(``RLIMIT_AS``), opens the PDF and checks the page count and every page's size. Messages on ``out`` (a bounded
``multiprocessing.Queue``, so the worker blocks when the parent falls behind):

- ``("meta", n_pages)`` once every check passed;
- ``("page", index, text, png, thumbnail, width, height, seconds)`` per page, in order (``index`` 0-based,
  ``png``/``thumbnail`` encoded bytes, ``seconds`` spent rendering and encoding it);
- ``("error", kind, message, received, allowed)`` with ``kind`` ``"corrupt"`` or ``"limit"``, then the end;
- ``("done",)`` after the last page.
"""

from __future__ import annotations

import io
import os
import resource
import time
from dataclasses import dataclass
from typing import Any

import pypdfium2 as pdfium

__all__ = ["RenderOptions", "render_scale", "work"]


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How a PDF's pages are rendered, and the limits the worker enforces itself."""

    dpi: int = 144  # render resolution; a US-letter page is 1224 x 1584 px at 144
    thumbnail_px: int = 256  # longest side of the JPEG thumbnail
    max_pages: int = 2000  # more pages: the file is refused before any page is rendered
    max_side_pt: float = 14_400.0  # a page side over this (200 inches, PDF's own bound) is refused
    max_pixels: int = 12_000_000  # a page whose render would exceed this is rendered at a lower scale
    memory_bytes: int = 1 << 30  # address space the worker may add to what it holds at start (RLIMIT_AS)


def render_scale(width_pt: float, height_pt: float, dpi: int, max_pixels: int) -> float:
    """Pixels per point for a page: ``dpi / 72``, lowered so that the bitmap holds at most ``max_pixels``.

    >>> render_scale(612, 792, 144, 12_000_000)
    2.0
    >>> round(render_scale(2000, 2000, 144, 1_000_000), 3)
    0.5
    """
    scale = dpi / 72.0
    pixels = width_pt * height_pt * scale * scale
    if pixels > max_pixels:
        scale *= (max_pixels / pixels) ** 0.5
    return scale


def _limit_memory(extra: int) -> None:
    """Cap the address space at what the process maps now plus ``extra`` bytes."""
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (mapped + extra, mapped + extra))


def _check(pdf: pdfium.PdfDocument, opts: RenderOptions) -> tuple[Any, ...] | None:
    """The error message for a PDF over a limit, or None (runs before any page is rendered)."""
    n = len(pdf)
    if n > opts.max_pages:
        return ("error", "limit", "The page count", n, opts.max_pages)
    for i in range(n):
        width, height = pdf.get_page_size(i)
        side = max(width, height)
        if side > opts.max_side_pt or min(width, height) < 1:
            what = f"The size in points of page {i + 1} ({width:.0f} x {height:.0f})"
            return ("error", "limit", what, int(side), int(opts.max_side_pt))
    return None


def _page(pdf: pdfium.PdfDocument, index: int, opts: RenderOptions) -> tuple[Any, ...]:
    started = time.perf_counter()
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        text = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
        textpage.close()
        width, height = page.get_size()
        bitmap = page.render(scale=render_scale(width, height, opts.dpi, opts.max_pixels))
        image = bitmap.to_pil().convert("RGB")
        bitmap.close()
    finally:
        page.close()
    png, thumb = io.BytesIO(), io.BytesIO()
    w, h = image.width, image.height
    image.save(png, format="PNG", compress_level=1)
    image.thumbnail((opts.thumbnail_px, opts.thumbnail_px))
    image.save(thumb, format="JPEG", quality=80)
    del image
    seconds = time.perf_counter() - started
    return ("page", index, text, png.getvalue(), thumb.getvalue(), w, h, seconds)


def work(data: bytes, opts: RenderOptions, out: Any) -> None:
    """Render ``data`` (a PDF) page by page into ``out``; every failure becomes an ``error`` message."""
    _limit_memory(opts.memory_bytes)
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        out.put(("error", "corrupt", f"not a readable PDF: {exc}", None, None))
        return
    try:
        refused = _check(pdf, opts)
        if refused is not None:
            out.put(refused)
            return
        out.put(("meta", len(pdf)))
        for index in range(len(pdf)):
            out.put(_page(pdf, index, opts))
        out.put(("done",))
    except pdfium.PdfiumError as exc:
        out.put(("error", "corrupt", f"a page cannot be rendered: {exc}", None, None))
    except MemoryError:
        out.put(("error", "limit", "The memory in bytes the renderer needs", opts.memory_bytes + 1, opts.memory_bytes))
    finally:
        pdf.close()
