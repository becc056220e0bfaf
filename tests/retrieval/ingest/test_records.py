"""JSON and JSON Lines records (retrieval/ingest/records.py): ids, title + text, skipped records, located errors."""

from __future__ import annotations

import json

import pytest

from retrieval.errors import CorruptFileError, RetrievalError
from retrieval.ingest.parsers import parse, parse_file
from retrieval.ingest.records import JsonlReader, record_document


def _error(cls: type[RetrievalError], name: str, data: bytes, **kw: int) -> RetrievalError:
    with pytest.raises(cls) as err:
        parse_file(name, data, **kw)
    assert err.value.param == "file"
    assert err.value.received == name
    assert f"`{name}`" in err.value.message
    return err.value


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


def test_the_reader_streams_and_counts_skipped_records_as_it_goes() -> None:
    lines = iter([b'{"id": "a", "text": "x"}\n', b'{"id": "b"}\n', b"\n", b'{"id": "c", "text": "y"}\n'])
    reader = JsonlReader("s.jsonl", lines)
    it = iter(reader)
    assert next(it).id == "a" and reader.skipped == 0
    assert next(it).id == "c" and reader.skipped == 1
    assert list(it) == [] and reader.skipped == 1


def test_record_document_directly() -> None:
    doc = record_document({"id": 3, "title": "T", "text": "", "metadata": {"k": 1}}, name="f", n=9, where="record 9")
    assert doc is not None and (doc.id, doc.text, doc.metadata, doc.source) == ("3", "T", {"k": 1}, "f")
    assert record_document({"text": " "}, name="f", n=1, where="") is None
    with pytest.raises(CorruptFileError, match=r"^`f` record 2: expected a JSON object, got list$"):
        record_document([], name="f", n=2, where="record 2")
