"""parse / parse_file dispatch: text, Markdown, PDF by name or magic, unsupported types (param "file", the name).

PDF pages and JSON / JSON Lines records are tested with their modules (test_pdf.py, test_records.py)."""

from __future__ import annotations

import time

import pytest

from retrieval.errors import CorruptFileError, RetrievalError, UnsupportedFileError
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.parsers import EXTENSIONS, parse, parse_file, split_front_matter
from tests.fixtures.pdfs import pdf_bytes


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
        "---\nA paragraph between two thematic breaks.\n---\ntext",  # YAML, but not a map
        "---\n- a list\n- at the top\n---\ntext",
    ],
)
def test_markdown_without_front_matter_is_kept_whole(md: str) -> None:
    (doc,) = parse_file("a.markdown", md.encode())
    assert doc.text == md and doc.metadata == {"source": "a.markdown"}


def test_yaml_front_matter_keeps_lists_maps_and_dates() -> None:
    """Obsidian / Hugo / Jekyll notes: lists, nested maps, dates, anchors and merge keys become metadata."""
    md = (
        "---\n"
        "title: Field notes\n"
        "tags: [birds, 'north sea']\n"
        "aliases:\n  - notes\n  - log\n"
        "date: 2024-05-01\n"
        "updated: 2024-05-02T10:30:00Z\n"
        "author: &me {name: Ada, roles: [editor]}\n"
        "reviewer: *me\n"
        "base: &base {lang: en}\n"
        "site:\n  <<: *base\n  section: {name: field, weight: 3}\n"
        "huge: 123456789012345678901234567890\n"
        "empty:\n"
        "---\n"
        "# Body\n"
    )
    (doc,) = parse_file("notes.md", md.encode())
    assert doc.text == "# Body\n"
    assert doc.metadata == {
        "title": "Field notes",
        "tags": ["birds", "north sea"],
        "aliases": ["notes", "log"],
        "date": "2024-05-01",
        "updated": "2024-05-02T10:30:00+00:00",
        "author": {"name": "Ada", "roles": ["editor"]},
        "reviewer": {"name": "Ada", "roles": ["editor"]},
        "base": {"lang": "en"},
        "site": {"lang": "en", "section": {"name": "field", "weight": 3}},
        "huge": "123456789012345678901234567890",  # beyond 64 bits: kept exactly, as text
        "empty": None,
        "source": "notes.md",
    }
    assert split_front_matter("---\n1: a\n2024-01-01: b\nfalse: c\n---\n") == (
        {"1": "a", "2024-01-01": "b", "false": "c"},
        "",
    )


def _laughs(levels: int, width: int = 9) -> str:
    """YAML's "billion laughs": each level refers `width` times to the one before it."""
    lines = ['l0: &l0 ["lol"]'] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "---\n" + "\n".join(lines) + "\n---\nbody\n"


@pytest.mark.parametrize(
    ("md", "message"),
    [
        (_laughs(10), "expands to more than 10000 values"),  # 9**9 values if expanded
        (
            "---\n" + "\n".join(f"a{i}: &a{i} [x]\nb{i}: *a{i}" for i in range(300)) + "\n---\nx",
            "more than 256 aliases",
        ),
        ("---\nx: " + "[" * 40 + "]" * 40 + "\n---\nx", "nests deeper than 32 levels"),
        ("---\nx: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n---\nx", "nests deeper than 32 levels"),
        ("---\nx: " + "y" * 70_000 + "\n---\nx", "over the limit of 65536 bytes"),
        ("---\ntitle: [unclosed\nnext: 1\n---\nbody", "is not valid YAML at line 3"),
        ("---\ntitle: a\n  bad: indent\n---\nbody", "is not valid YAML"),
        ("---\nkey: value\nkey2: *nowhere\n---\nbody", "is not valid YAML"),
        ("---\nbin: !!binary aGVsbG8=\n---\nbody", "binary"),
        ("---\nx: .nan\n---\nbody", "JSON metadata cannot store"),
        ("---\nobj: !!python/object:os.system {}\n---\nbody", "is not valid YAML"),  # safe loader: no objects
    ],
)
def test_hostile_or_malformed_front_matter_fails_the_file(md: str, message: str) -> None:
    start = time.perf_counter()
    err = _error(CorruptFileError, "hostile.md", md.encode())
    assert message in err.message and "`hostile.md`" in err.message, err.message
    assert time.perf_counter() - start < 2.0  # bounded work, never a hang


def test_front_matter_only_markdown_has_no_text() -> None:
    assert parse("a.md", b"---\ntitle: x\n---\n\n").skipped == 1
    assert split_front_matter("---\n...\nrest") == ({}, "rest")


# --- PDF ---------------------------------------------------------------------------------------------------


def test_pdf_is_recognised_by_magic_under_an_unknown_name_and_any_case() -> None:
    data = pdf_bytes(["magic"])
    assert [d.text for d in parse_file("upload", data)] == ["magic"]
    assert [d.id for d in parse_file("X.PDF", data)] == ["X.PDF#page=1"]


# --- unsupported -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["image.png", "archive.tar.gz", "README", "notes.txt.bak", ".hidden"])
def test_unsupported_types_list_the_supported_ones(name: str) -> None:
    err = _error(UnsupportedFileError, name, b"data")
    assert err.allowed == sorted(EXTENSIONS)
    assert ".pdf" in err.message and ".jsonl" in err.message
