"""PDF text per page (retrieval/ingest/pdf.py): round trips through real PDFs, empty pages, corrupt files, limits."""

from __future__ import annotations

import threading

import numpy as np
import pypdfium2 as pdfium
import pytest

from retrieval.errors import CorruptFileError, LimitExceededError, RetrievalError
from retrieval.ingest.parsers import parse, parse_file
from retrieval.ingest.pdf import is_pdf, read_pdf_pages
from tests.fixtures.pdfs import pdf_bytes, write_corrupt_pdf

PAGES = ["First page\nwith two lines", "", "Third page: café, naïve, 42%"]


def _error(cls: type[RetrievalError], name: str, data: bytes, **kw: int) -> RetrievalError:
    with pytest.raises(cls) as err:
        parse_file(name, data, **kw)
    assert err.value.param == "file"
    assert err.value.received == name
    assert f"`{name}`" in err.value.message
    return err.value


def test_pdf_round_trip_one_document_per_page_with_text() -> None:
    parsed = parse("docs/r.pdf", pdf_bytes(PAGES))
    assert parsed.skipped == 1
    assert [(d.id, d.page, d.source, d.metadata) for d in parsed.documents] == [
        ("docs/r.pdf#page=1", 1, "docs/r.pdf", {"source": "docs/r.pdf", "page": 1}),
        ("docs/r.pdf#page=3", 3, "docs/r.pdf", {"source": "docs/r.pdf", "page": 3}),
    ]
    assert [d.text for d in parsed.documents] == [PAGES[0], PAGES[2]]


def test_pdf_without_any_text_yields_nothing() -> None:
    parsed = parse("blank.pdf", pdf_bytes(["", ""], rects={0: (10, 10, 50, 50)}))
    assert (parsed.documents, parsed.skipped) == ([], 2)


def test_corrupt_pdfs(tmp_path) -> None:
    data = write_corrupt_pdf(tmp_path / "c.pdf").read_bytes()
    assert data.startswith(b"%PDF-")
    assert "not a readable PDF" in _error(CorruptFileError, "c.pdf", data).message
    _error(CorruptFileError, "t.pdf", pdf_bytes(["x"])[:100])  # truncated
    _error(CorruptFileError, "text.pdf", b"just some text")
    _error(CorruptFileError, "blob", b"%PDF-1.7 and nothing else")


def test_page_limit() -> None:
    data = pdf_bytes(["a", "b", "c"])
    assert len(parse_file("ok.pdf", data, max_pdf_pages=3)) == 3
    err = _error(LimitExceededError, "big.pdf", data, max_pdf_pages=2)
    assert err.allowed == 2 and "3" in err.message


def test_pdfium_calls_from_threads_are_serialised() -> None:
    data = pdf_bytes([f"page {i}" for i in range(5)])
    results: list[list[str]] = []

    def work() -> None:
        for _ in range(5):
            results.append([d.text for d in parse_file("p.pdf", data)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[f"page {i}" for i in range(5)]] * 20


def test_fixture_draws_a_filled_rectangle() -> None:
    with pdfium.PdfDocument(pdf_bytes(["", "x"], size=(200, 100), rects={0: (50, 25, 100, 50)})) as pdf:
        page = pdf[0]
        bitmap = page.render(scale=1)
        pixels = np.asarray(bitmap.to_numpy())
        bitmap.close()
        page.close()
    assert pixels.shape[:2] == (100, 200)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 80)  # BGR(x) or RGB: red is the only saturated channel
    red |= (pixels[..., 2] > 150) & (pixels[..., 1] < 80)
    assert 0.2 < red.mean() < 0.3  # 100 x 50 of 200 x 100 points
    assert red[50, 100] and not red[5, 5]


def test_read_pdf_pages_directly() -> None:
    data = pdf_bytes(["line one\nline two", "", " "])
    assert is_pdf(data) and not is_pdf(b" %PDF-") and not is_pdf(b"")
    pages = read_pdf_pages("r.pdf", data)
    assert pages.empty_pages == 2 and [(d.id, d.text, d.page) for d in pages.documents] == [
        ("r.pdf#page=1", "line one\nline two", 1)
    ]
    with pytest.raises(LimitExceededError) as err:
        read_pdf_pages("r.pdf", data, max_pages=2)
    assert (err.value.param, err.value.received, err.value.allowed) == ("file", "r.pdf", 2)
