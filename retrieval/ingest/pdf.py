"""Text of each PDF page with pypdfium2: one :class:`SourceDocument` per page that has text.

PDFium is not thread-safe, so every call into it in this process holds :data:`PDFIUM_LOCK`; other modules
that use pypdfium2 (page rendering) take the same lock. Every PDFium object is closed before returning.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pypdfium2 as pdfium

from retrieval.errors import CorruptFileError, LimitExceededError
from retrieval.ingest.documents import SourceDocument

__all__ = ["PDFIUM_LOCK", "PDF_MAGIC", "PdfText", "is_pdf", "read_pdf_pages"]

PDF_MAGIC = b"%PDF-"  # the first bytes of every PDF file
PDFIUM_LOCK = threading.Lock()  # PDFium allows one call at a time per process


@dataclass(frozen=True)
class PdfText:
    """What a PDF yielded: one document per page with text, and how many pages had none."""

    documents: list[SourceDocument]  # in page order; ids f"{name}#page={n}"
    empty_pages: int  # pages whose extracted text was empty or whitespace (scans without a text layer)


def is_pdf(data: bytes) -> bool:
    """Whether ``data`` starts with the PDF magic (``%PDF-``), as every PDF writer emits it."""
    return data.startswith(PDF_MAGIC)


def _page_text(pdf: pdfium.PdfDocument, index: int) -> str:
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            text: str = textpage.get_text_range()
        finally:
            textpage.close()
    finally:
        page.close()
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _open(name: str, data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise CorruptFileError(f"`{name}` is not a readable PDF: {exc}", param="file", received=name) from exc


def read_pdf_pages(name: str, data: bytes, *, max_pages: int = 2000) -> PdfText:
    """One document per page of the PDF ``data`` that has text; ``name`` is its file name or relative path.

    A page's metadata is ``{"source": name, "page": n}`` (n 1-based). Line ends come back as ``\\n``.
    Raises :class:`CorruptFileError` when PDFium cannot open the file or a page, and
    :class:`LimitExceededError` when it has more than ``max_pages`` pages; both with ``param="file"`` and
    ``received=name``.
    """
    with PDFIUM_LOCK:
        pdf = _open(name, data)
        try:
            n_pages = len(pdf)
            if n_pages > max_pages:
                err = LimitExceededError(f"The page count of PDF `{name}`", n_pages, max_pages, param="file")
                err.received = name  # every per-file error names the file; the count is in the message
                raise err
            documents: list[SourceDocument] = []
            for index in range(n_pages):
                try:
                    text = _page_text(pdf, index)
                except pdfium.PdfiumError as exc:
                    msg = f"Page {index + 1} of PDF `{name}` cannot be read: {exc}"
                    raise CorruptFileError(msg, param="file", received=name) from exc
                if text.strip():
                    n = index + 1
                    meta = {"source": name, "page": n}
                    documents.append(SourceDocument(f"{name}#page={n}", text, meta, source=name, page=n))
        finally:
            pdf.close()
    return PdfText(documents=documents, empty_pages=n_pages - len(documents))
