"""Documents from JSON and JSON Lines files: objects shaped ``{id | _id, title?, text, metadata?, vectors?}``.

The text of a record with a non-empty ``title`` is ``title + " " + text`` (the BEIR corpus recipe). A record
without an id gets ``f"{name}:{n}"`` with ``n`` its 1-based line (JSONL) or position (JSON). Records with no
text are skipped and counted; anything malformed raises :class:`CorruptFileError` naming the file, the line or
record, and (for JSON syntax errors) the byte offset. JSON nested deeper than `MAX_JSON_DEPTH` is refused
before it is decoded (`NestingTooDeepError`, a per-file error), never a `RecursionError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from retrieval.common.json_depth import check_json_depth
from retrieval.errors import CorruptFileError
from retrieval.ingest.decoding import decode_utf8, strip_bom
from retrieval.ingest.documents import SourceDocument

__all__ = ["JsonlReader", "parse_json", "record_document"]


def _bad(name: str, where: str, what: str) -> CorruptFileError:
    at = f" {where}" if where else ""
    return CorruptFileError(f"`{name}`{at}: {what}", param="file", received=name)


def _string_field(record: Mapping[str, Any], key: str, name: str, where: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(name, where, f"`{key}` must be a string, got {type(value).__name__}")
    return value


def _record_id(record: Mapping[str, Any], fallback: str, name: str, where: str) -> str:
    value = record.get("id", record.get("_id"))
    if value is None:
        return fallback
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise _bad(name, where, f"the id must be a non-empty string or an integer, got {value!r}")
    return str(value)


def _object_field(record: Mapping[str, Any], key: str, name: str, where: str) -> dict[str, Any] | None:
    value = record.get(key)
    if value is not None and not isinstance(value, dict):
        raise _bad(name, where, f"`{key}` must be an object, got {type(value).__name__}")
    return value


def _joined(title: str, body: str) -> str:
    """``title + " " + body`` (the BEIR recipe) when both have text, else whichever has."""
    if not title.strip():
        return body
    return f"{title} {body}" if body.strip() else title


def record_document(record: Any, *, name: str, n: int, where: str) -> SourceDocument | None:
    """The document of one decoded record (``n``: 1-based line or position), None when it has no text."""
    if not isinstance(record, dict):
        raise _bad(name, where, f"expected a JSON object, got {type(record).__name__}")
    title = _string_field(record, "title", name, where)
    body = _string_field(record, "text", name, where)
    text = _joined(title, body)
    doc_id = _record_id(record, f"{name}:{n}", name, where)
    metadata = _object_field(record, "metadata", name, where) or {}
    vectors = _object_field(record, "vectors", name, where)
    if not text.strip():
        return None
    return SourceDocument(id=doc_id, text=text, metadata=metadata, source=name, vectors=vectors)


def _loads(name: str, raw: bytes, text: str, where: str, byte_offset: int) -> Any:
    """`text` (decoded from `raw`, which starts at `byte_offset` in the file) as JSON."""
    check_json_depth(raw, param="file", what=f"`{name}`{f' {where}' if where else ''}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = byte_offset + len(text[: exc.pos].encode("utf-8"))
        raise _bad(name, where, f"invalid JSON at byte offset {at} ({exc.msg})") from exc


class JsonlReader:
    """Iterates the documents of a JSON Lines file without holding them all; blank lines are ignored.

    ``skipped`` counts records without text once iteration has finished (or so far, while it runs).
    """

    def __init__(self, name: str, lines: Iterable[bytes]) -> None:
        self.name = name  # file name or relative posix path, for ids and errors
        self.skipped = 0  # records without text seen so far
        self._lines = lines  # raw lines, each with its line end (as file objects and splitlines(True) give)

    def __iter__(self) -> Iterator[SourceDocument]:
        offset = 0
        for line_no, raw in enumerate(self._lines, start=1):
            line, bom = strip_bom(raw) if line_no == 1 else (raw, 0)
            text = decode_utf8(self.name, line, offset=offset + bom)
            if text.strip():
                where = f"line {line_no}"
                record = _loads(self.name, line, text, where, offset + bom)
                doc = record_document(record, name=self.name, n=line_no, where=where)
                if doc is None:
                    self.skipped += 1
                else:
                    yield doc
            offset += len(raw)


def parse_json(name: str, data: bytes) -> tuple[list[SourceDocument], int]:
    """Documents of a JSON file holding a list of records or ``{"documents": [...]}``, and the skipped count."""
    body, bom = strip_bom(data)
    value = _loads(name, body, decode_utf8(name, body, offset=bom), "", bom)
    if isinstance(value, dict) and isinstance(value.get("documents"), list):
        value = value["documents"]
    if not isinstance(value, list):
        raise _bad(name, "", 'expected a list of documents or {"documents": [...]}')
    documents: list[SourceDocument] = []
    for n, record in enumerate(value, start=1):
        doc = record_document(record, name=name, n=n, where=f"record {n}")
        if doc is not None:
            documents.append(doc)
    return documents, len(value) - len(documents)
