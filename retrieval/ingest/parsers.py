"""Files to :class:`SourceDocument` lists by type: plain text, Markdown, PDF (one document per page), JSON(L).

The type comes from the extension (case-insensitive); a file with no or an unknown extension whose bytes start
with ``%PDF-`` is read as a PDF (uploads named ``blob`` or ``scan.bin``). Every error names the file:
``param="file"``, ``received=<name>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from retrieval.errors import UnsupportedFileError
from retrieval.ingest.decoding import decode_utf8, strip_bom
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.front_matter import split_front_matter
from retrieval.ingest.pdf import is_pdf, read_pdf_pages
from retrieval.ingest.records import JsonlReader, parse_json

__all__ = [
    "EXTENSIONS",
    "FileKind",
    "ParsedFile",
    "file_kind",
    "parse",
    "parse_file",
    "split_front_matter",
]

FileKind = Literal["text", "markdown", "pdf", "jsonl", "json"]

EXTENSIONS: dict[str, FileKind] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
    ".json": "json",
}  # supported extensions (lower case) and the kind each means


@dataclass(frozen=True)
class ParsedFile:
    """The documents a file yielded, and how many of its pieces held no text (empty pages, records, files)."""

    documents: list[SourceDocument]  # in file order
    skipped: int  # pages / records / whole files without text; they produce no document

    def __iter__(self) -> Iterator[SourceDocument]:
        return iter(self.documents)


def file_kind(name: str, head: bytes = b"") -> FileKind:
    """The kind of file ``name`` whose first bytes are ``head``; :class:`UnsupportedFileError` if none fits."""
    kind = EXTENSIONS.get(PurePosixPath(name).suffix.lower())
    if kind is None and is_pdf(head):
        return "pdf"
    if kind is None:
        supported = sorted(EXTENSIONS)
        msg = f"`{name}` has an unsupported file type; supported: {', '.join(supported)}"
        raise UnsupportedFileError(msg, param="file", received=name, allowed=supported)
    return kind


def _parse_text(name: str, data: bytes, markdown: bool) -> ParsedFile:
    body, bom = strip_bom(data)
    text = decode_utf8(name, body, offset=bom)
    meta, text = split_front_matter(text, name) if markdown else ({}, text)
    if not text.strip():
        return ParsedFile([], skipped=1)
    doc = SourceDocument(id=name, text=text, metadata={**meta, "source": name}, source=name)
    return ParsedFile([doc], skipped=0)


def parse(name: str, data: bytes, *, max_pdf_pages: int = 2000) -> ParsedFile:
    """The documents of file ``name`` (a file name or relative posix path) with content ``data``.

    - text (``.txt``, ``.text``): one document, id ``name``, metadata ``{"source": name}``;
    - Markdown (``.md``, ``.markdown``): the same, kept as Markdown, YAML front matter merged into metadata
      (``retrieval.ingest.front_matter``; a block that is not valid YAML or is over its bounds fails the file);
    - PDF (``.pdf``, or ``%PDF-`` magic under an unknown extension): one document per page with text;
    - JSON Lines (``.jsonl``) / JSON (``.json``): one document per record (see ``retrieval.ingest.records``).

    Raises :class:`UnsupportedFileError`, :class:`CorruptFileError` (undecodable text, broken PDF or JSON)
    or :class:`LimitExceededError` (more than ``max_pdf_pages`` pages), each with ``param="file"``.
    """
    kind = file_kind(name, data[:8])
    if kind == "pdf":
        pages = read_pdf_pages(name, data, max_pages=max_pdf_pages)
        return ParsedFile(pages.documents, skipped=pages.empty_pages)
    if kind == "jsonl":
        reader = JsonlReader(name, data.splitlines(keepends=True))
        documents = list(reader)
        return ParsedFile(documents, skipped=reader.skipped)
    if kind == "json":
        documents, skipped = parse_json(name, data)
        return ParsedFile(documents, skipped=skipped)
    return _parse_text(name, data, markdown=kind == "markdown")


def parse_file(name: str, data: bytes, *, max_pdf_pages: int = 2000) -> list[SourceDocument]:
    """The documents of file ``name`` with content ``data``; :func:`parse` without the skipped count."""
    return parse(name, data, max_pdf_pages=max_pdf_pages).documents
