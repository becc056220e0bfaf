"""Files and folders to batches of documents, streamed, with one :class:`FileReport` per file.

The one code path that turns paths into request-sized batches: ``retrieval ingest`` sends each batch over
HTTP, ``LocalRetrieval.upload_files`` writes it in process. A file that fails part-way (a JSON Lines corpus
with a bad line) keeps the documents read before the fault and is reported with its error; the rest go on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrieval.errors import RetrievalError
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.files import FileReport, open_documents, walk
from retrieval.ingest.parsers import EXTENSIONS

__all__ = ["FileBatches", "Item", "document_json", "unsupported_files"]


@dataclass(frozen=True)
class Item:
    """One document and the file it came from."""

    path: Path  # the file on disk
    doc: SourceDocument  # the parsed document


def document_json(doc: SourceDocument) -> dict[str, Any]:
    """The request form ``{id, text, metadata, source?, page?, vectors?}`` of a parsed document (file name
    and page also stay in ``metadata``, where filters can use them).

    >>> document_json(SourceDocument("a.pdf#page=2", "hi", {"source": "a.pdf", "page": 2}, source="a.pdf", page=2))
    {'id': 'a.pdf#page=2', 'text': 'hi', 'metadata': {'source': 'a.pdf', 'page': 2}, 'source': 'a.pdf', 'page': 2}
    """
    body: dict[str, Any] = {"id": doc.id, "text": doc.text, "metadata": doc.metadata}
    optional = {"source": doc.source, "page": doc.page, "vectors": doc.vectors}
    return body | {k: v for k, v in optional.items() if v is not None}


def unsupported_files(paths: Sequence[Path]) -> list[Path]:
    """Non-hidden files under the folders of ``paths`` that the walk leaves out for their type, sorted.

    Files named directly are not listed: reading one of an unsupported type is an error in its report.
    """
    found: list[Path] = []
    for folder in (p for p in paths if p.is_dir()):
        for dirpath, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [
                Path(dirpath) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() not in EXTENSIONS
            ]
    return sorted(found)


@dataclass
class FileBatches:
    """Iterate batches of at most ``size`` items from ``paths``; read ``reports`` (one per file) as it goes.

    A batch never holds one id twice: a repeated id closes the batch, so the later document wins in order.
    ``metadata`` is merged under each document's own metadata (the document's keys win).
    """

    paths: Sequence[Path]  # files and folders as given
    size: int = 64  # documents per batch
    metadata: Mapping[str, Any] = field(default_factory=dict)  # extra metadata for every document
    reports: list[FileReport] = field(default_factory=list)  # filled as files are read, in file order
    files: int = 0  # files found so far

    def __iter__(self) -> Iterator[list[Item]]:
        batch: list[Item] = []
        ids: set[str] = set()
        for item in self._items():
            if len(batch) >= self.size or item.doc.id in ids:
                yield batch
                batch, ids = [], set()
            batch.append(item)
            ids.add(item.doc.id)
        if batch:
            yield batch

    def _items(self) -> Iterator[Item]:
        for path, root in walk(list(self.paths)):
            self.files += 1
            count, skipped, error = 0, 0, None
            try:
                source = open_documents(path, root)
                for doc in source:
                    count += 1
                    yield Item(path, self._with_metadata(doc))
                skipped = source.skipped
            except RetrievalError as exc:
                error = exc.message
            self.reports.append(FileReport(path, documents=count, error=error, skipped=skipped))

    def _with_metadata(self, doc: SourceDocument) -> SourceDocument:
        if not self.metadata:
            return doc
        merged = {**self.metadata, **doc.metadata}
        return SourceDocument(doc.id, doc.text, merged, doc.source, doc.page, doc.vectors)
