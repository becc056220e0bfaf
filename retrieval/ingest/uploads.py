"""Uploaded files into a collection: parse each file (a bad one is reported, the rest go in), then ingest the
documents in batches, reporting progress after each batch.

Pure of HTTP: the API hands over `(name, bytes)` pairs; the same function serves a small upload answered at
once and a large one run as a background job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from retrieval.errors import InvalidRequestError, RetrievalError
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.parsers import parse

__all__ = ["BATCH", "FileResult", "UploadResult", "UploadedFile", "ingest_files", "parse_uploads"]

BATCH = 64  # documents per write (each write is one encode job and one transaction)


@dataclass(frozen=True)
class UploadedFile:
    """One uploaded file."""

    name: str  # the client's file name (ids and `source` derive from it)
    data: bytes  # its content


@dataclass(frozen=True)
class FileResult:
    """What one file yielded."""

    name: str  # the file name
    documents: int  # documents it yielded (pages for a PDF); 0 on error
    error: str | None = None  # why it could not be read; None on success


@dataclass(frozen=True)
class UploadResult:
    """What an upload wrote."""

    ids: list[str] = field(default_factory=list)  # document ids written (new or replaced)
    skipped: list[str] = field(default_factory=list)  # ids whose content was unchanged (not re-encoded)
    files: list[FileResult] = field(default_factory=list)  # one per uploaded file, in upload order


def _with_metadata(doc: SourceDocument, metadata: Mapping[str, Any]) -> SourceDocument:
    """The upload-wide metadata under the file's own (source, page, front matter win)."""
    return replace(doc, metadata={**metadata, **doc.metadata}) if metadata else doc


def parse_uploads(
    files: Sequence[UploadedFile], metadata: Mapping[str, Any] | None = None
) -> tuple[list[SourceDocument], list[FileResult]]:
    """Every file's documents, and one report per file; a file whose name repeats an earlier one is an error.

    Raises InvalidRequestError (`param="files"`) when no file was given or every file failed.
    """
    if not files:
        raise InvalidRequestError("upload at least one file (multipart/form-data file parts)", param="files")
    docs: list[SourceDocument] = []
    reports: list[FileResult] = []
    seen: set[str] = set()
    for f in files:
        if f.name in seen:
            reports.append(FileResult(f.name, 0, f"`{f.name}` appears twice in one upload"))
            continue
        seen.add(f.name)
        try:
            parsed = parse(f.name, f.data)
        except RetrievalError as exc:
            reports.append(FileResult(f.name, 0, exc.message))
            continue
        docs.extend(_with_metadata(d, metadata or {}) for d in parsed.documents)
        reports.append(FileResult(f.name, len(parsed.documents)))
    if all(r.error for r in reports):
        errors = "; ".join(f"{r.name}: {r.error}" for r in reports)
        raise InvalidRequestError(f"no uploaded file could be read: {errors}", param="files")
    return docs, reports


Ingest = Callable[[list[SourceDocument]], Awaitable[tuple[list[str], list[str]]]]
"""Writes one batch durably; returns (ids written, ids skipped as unchanged)."""


async def ingest_files(
    docs: Sequence[SourceDocument],
    reports: Sequence[FileResult],
    write: Ingest,
    progress: Callable[[int, int], None] | None = None,
) -> UploadResult:
    """Write `docs` in batches of `BATCH` through `write`, calling `progress(done, total)` after each."""
    result = UploadResult(files=list(reports))
    total = len(docs)
    if progress is not None:
        progress(0, total)
    for start in range(0, total, BATCH):
        ids, skipped = await write(list(docs[start : start + BATCH]))
        result.ids.extend(ids)
        result.skipped.extend(skipped)
        if progress is not None:
            progress(min(start + BATCH, total), total)
    return result
