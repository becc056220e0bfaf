"""Ingestion, the file and text side: parse files into documents, split long text into token windows.

The readers here (files, parsers, pdf, chunking, records, batches, uploads) are pure file/text handling: no
encoder, no HTTP, no SQLite. `pipeline` joins them to a collection's encoders and builds the store's records;
`pages/` renders PDF pages and commits page images with their files. The encoder supplies token spans for
chunking; the store decides what to write (``content_hash`` tells it what is unchanged).

May import: `retrieval.spec`, `retrieval.store` (its record types), `retrieval.common`, `retrieval.errors`;
never `search` or above.
"""

from __future__ import annotations

from retrieval.ingest.chunking import TextChunk, chunk_text, window_bounds
from retrieval.ingest.documents import SourceDocument, content_hash
from retrieval.ingest.files import FileReport, iter_paths, open_documents, read_documents, try_read, walk
from retrieval.ingest.parsers import EXTENSIONS, FileKind, ParsedFile, file_kind, parse, parse_file
from retrieval.ingest.pdf import PDFIUM_LOCK

__all__ = [
    "EXTENSIONS",
    "PDFIUM_LOCK",
    "FileKind",
    "FileReport",
    "ParsedFile",
    "SourceDocument",
    "TextChunk",
    "chunk_text",
    "content_hash",
    "file_kind",
    "iter_paths",
    "open_documents",
    "parse",
    "parse_file",
    "read_documents",
    "try_read",
    "walk",
    "window_bounds",
]
