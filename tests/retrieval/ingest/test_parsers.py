"""parse / parse_file for every supported type, every error (param "file", received the name), PDF round trips."""

from __future__ import annotations

import json
import threading

import numpy as np
import pypdfium2 as pdfium
import pytest

from retrieval.errors import CorruptFileError, LimitExceededError, RetrievalError, UnsupportedFileError
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.parsers import EXTENSIONS, parse, parse_file, split_front_matter
from tests.fixtures.pdfs import pdf_bytes, write_corrupt_pdf

PAGES = ["First page\nwith two lines", "", "Third page: café, naïve, 42%"]


def _error(cls: type[RetrievalError], name: str, data: bytes, **kw: int) -> RetrievalError:
    with pytest.raises(cls) as err:
        parse_file(name, data, **kw)
    assert err.value.param == "file"
    assert err.value.received == name
    assert f"`{name}`" in err.value.message
    return err.value


# --- plain text and Markdown -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.txt", "dir/b.TEXT", "C.Txt"])
def test_text_is_one_document_named_by_the_file(name: str) -> None:
    text = "Line one\r\nLine two\n\n  indented\t"
    assert parse_file(name, text.encode()) == [SourceDocument(name, text, {"source": name}, source=name)]


def test_bom_is_dropped() -> None:
    (doc,) = parse_file("a.txt", b"\xef\xbb\xbfhello")
    assert doc.text == "hello"


@pytest.mark.parametrize(
    ("data", "offset", "byte"),
    [(b"ok \xff rest", 3, "0xff"), ("é".encode() * 4 + b"\xc3(", 8, "0xc3"), (b"\xef\xbb\xbfab\x80", 5, "0x80")],
)
def test_undecodable_text_names_the_byte_offset(data: bytes, offset: int, byte: str) -> None:
    for name in ("bad.txt", "bad.md"):
        err = _error(CorruptFileError, name, data)
        assert f"offset {offset}" in err.message and byte in err.message


@pytest.mark.parametrize("data", [b"", b"  \n\t\n", b"\xef\xbb\xbf"])
def test_empty_text_yields_nothing_and_is_counted(data: bytes) -> None:
    for name in ("e.txt", "e.md"):
        parsed = parse(name, data)
        assert (parsed.documents, parsed.skipped) == ([], 1)


def test_markdown_front_matter_becomes_metadata() -> None:
    md = "---\ntitle: 'Notes: 1'\nyear: 2024\nscore: -1.5\ndraft: false\n# a comment\n\nsource: x\n---\n# Head\nbody\n"
    (doc,) = parse_file("n/notes.md", md.encode())
    assert doc.text == "# Head\nbody\n"
    assert doc.metadata == {"title": "Notes: 1", "year": 2024, "score": -1.5, "draft": False, "source": "n/notes.md"}
    assert (doc.id, doc.source, doc.page) == ("n/notes.md", "n/notes.md", None)


@pytest.mark.parametrize(
    "md",
    [
        "# Title\n\n---\nkey: value\n---\n",  # not at the start
        "---\nkey: value\nno closing line\n",  # unclosed: "no closing line" is not key: value
        "---\nkey: value\n",  # unclosed
        "---\ntags:\n  - a\n  - b\n---\ntext",  # nested YAML
    ],
)
def test_markdown_without_simple_front_matter_is_kept_whole(md: str) -> None:
    (doc,) = parse_file("a.markdown", md.encode())
    assert doc.text == md and doc.metadata == {"source": "a.markdown"}


def test_front_matter_only_markdown_has_no_text() -> None:
    assert parse("a.md", b"---\ntitle: x\n---\n\n").skipped == 1
    assert split_front_matter("---\n...\nrest") == ({}, "rest")


# --- PDF ---------------------------------------------------------------------------------------------------


def test_pdf_round_trip_one_document_per_page_with_text() -> None:
    parsed = parse("docs/r.pdf", pdf_bytes(PAGES))
    assert parsed.skipped == 1
    assert [(d.id, d.page, d.source, d.metadata) for d in parsed.documents] == [
        ("docs/r.pdf#page=1", 1, "docs/r.pdf", {"source": "docs/r.pdf", "page": 1}),
        ("docs/r.pdf#page=3", 3, "docs/r.pdf", {"source": "docs/r.pdf", "page": 3}),
    ]
    assert [d.text for d in parsed.documents] == [PAGES[0], PAGES[2]]


def test_pdf_is_recognised_by_magic_under_an_unknown_name_and_any_case() -> None:
    data = pdf_bytes(["magic"])
    assert [d.text for d in parse_file("upload", data)] == ["magic"]
    assert [d.id for d in parse_file("X.PDF", data)] == ["X.PDF#page=1"]


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


# --- JSON Lines and JSON -----------------------------------------------------------------------------------


def _jsonl(*records: object) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)


def test_jsonl_records() -> None:
    data = _jsonl(
        {"_id": "d1", "title": "Title", "text": "body", "metadata": {"y": 1}},
        {"id": 7, "text": "no title", "title": ""},
        b"   ",
        {"text": "fallback id", "vectors": {"dense": [0.5, 1]}},
        {"title": "only title", "text": " \n"},
        {"id": "empty", "text": "  ", "title": " "},
    )
    parsed = parse("c/corpus.jsonl", data)
    assert [(d.id, d.text, d.metadata, d.vectors, d.source) for d in parsed.documents] == [
        ("d1", "Title body", {"y": 1}, None, "c/corpus.jsonl"),
        ("7", "no title", {}, None, "c/corpus.jsonl"),
        ("c/corpus.jsonl:4", "fallback id", {}, {"dense": [0.5, 1]}, "c/corpus.jsonl"),
        ("c/corpus.jsonl:5", "only title", {}, None, "c/corpus.jsonl"),
    ]
    assert parsed.skipped == 1


def test_jsonl_crlf_and_bom() -> None:
    data = b"\xef\xbb\xbf" + b'{"id": "a", "text": "x"}\r\n{"id": "b", "text": "y"}'
    assert [d.id for d in parse_file("a.jsonl", data)] == ["a", "b"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b'{"text": "ok"}\n{"text": broken}\n', "line 2: invalid JSON at byte offset 24"),
        (b'{"text": "ok"}\n{"text": "\xe9"}\n', "offset 25"),
        (b'["a list"]\n', "line 1: expected a JSON object"),
        (b'{"id": true, "text": "x"}\n', "line 1: the id must be"),
        (b'{"_id": "", "text": "x"}\n', "the id must be"),
        (b'{"id": 1.5, "text": "x"}\n', "the id must be"),
        (b'{"text": 5}\n', "`text` must be a string"),
        (b'{"text": "x", "title": ["t"]}\n', "`title` must be a string"),
        (b'{"text": "x", "metadata": [1]}\n', "`metadata` must be an object"),
        (b'{"text": "x", "vectors": [1]}\n', "`vectors` must be an object"),
    ],
)
def test_bad_jsonl(data: bytes, needle: str) -> None:
    assert needle in _error(CorruptFileError, "bad.jsonl", data).message


def test_json_list_and_documents_object() -> None:
    records = [{"id": "a", "text": "A"}, {"text": "B", "title": "T"}, {"text": ""}]
    for body in (records, {"documents": records}):
        parsed = parse("x.json", json.dumps(body).encode())
        assert [(d.id, d.text) for d in parsed.documents] == [("a", "A"), ("x.json:2", "T B")]
        assert parsed.skipped == 1


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b'{"docs": []}', 'expected a list of documents or {"documents": [...]}'),
        (b'"text"', "expected a list"),
        (b'[{"text": "a"},\n {"text": }]', "invalid JSON at byte offset 26"),  # the "}" after ": "
        (b'[{"text": "a"}, 3]', "record 2: expected a JSON object"),
        (b'[{"text": "\xff"}]', "offset 11"),
    ],
)
def test_bad_json(data: bytes, needle: str) -> None:
    assert needle in _error(CorruptFileError, "bad.json", data).message


# --- unsupported -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["image.png", "archive.tar.gz", "README", "notes.txt.bak", ".hidden"])
def test_unsupported_types_list_the_supported_ones(name: str) -> None:
    err = _error(UnsupportedFileError, name, b"data")
    assert err.allowed == sorted(EXTENSIONS)
    assert ".pdf" in err.message and ".jsonl" in err.message
