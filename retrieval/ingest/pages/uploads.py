"""Uploads into a collection whose multi-vector model reads images: PDFs become page images, the rest text.

Each PDF goes through the page pipeline (:func:`retrieval.ingest.pages.pipeline.ingest_pdf`) on its own; a PDF that
fails (corrupt, over the page cap, an absurd page size, a render worker killed for time or memory) is reported
in its :class:`FileResult` and the other files go on. Pages written before a failure stay written (each window
commits as it completes) and are counted. Every other file takes the text path unchanged.

When every file fails, the upload fails: with a single file, with that file's own error (its class gives the
status: a limit is a 413, a corrupt file a 400); with several, with one error that names each file.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from retrieval.errors import InvalidRequestError, RetrievalError
from retrieval.ingest.pages.pipeline import PagePipeline, ingest_pdf
from retrieval.ingest.parsers import file_kind
from retrieval.ingest.uploads import FileResult, UploadedFile, UploadResult

__all__ = ["upload_pages"]

Progress = Callable[[int, int], None]
AddText = Callable[[Sequence[UploadedFile], Progress | None], Awaitable[UploadResult]]
"""The text path for the files that are not PDFs."""


def _is_pdf(f: UploadedFile) -> bool:
    try:
        return file_kind(f.name, f.data[:8]) == "pdf"
    except RetrievalError:
        return False  # unsupported: the text path reports it


class _Counter:
    """Pages done across the upload's PDFs, and the total as far as it is known."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress  # the job's callback, or None
        self.done = 0  # pages of finished files
        self.total = 0  # pages of finished files (a running file adds its own count)

    def file(self) -> Progress:
        def report(done: int, total: int) -> None:
            if self.progress is not None:
                self.progress(self.done + done, self.total + total)

        return report

    def finished(self, pages: int) -> None:
        self.done += pages
        self.total += pages


async def _pdf(
    pipe: PagePipeline, f: UploadedFile, metadata: Mapping[str, Any], counter: _Counter, out: UploadResult
) -> RetrievalError | None:
    before = len(out.ids) + len(out.skipped)
    error: RetrievalError | None = None
    try:
        ids, skipped = await ingest_pdf(pipe, f.name, f.data, metadata, counter.file())
        out.ids.extend(ids)
        out.skipped.extend(skipped)
    except RetrievalError as exc:
        error = exc
    pages = len(out.ids) + len(out.skipped) - before
    counter.finished(pages)
    out.files.append(FileResult(f.name, pages, None if error is None else error.message))
    return error


async def _text(others: list[UploadedFile], add_text: AddText, progress: Progress | None, out: UploadResult) -> None:
    try:
        text = await add_text(others, progress)
    except RetrievalError as exc:  # every other file failed: reported per file, the PDFs' pages stand
        out.files.extend(FileResult(f.name, 0, exc.message) for f in others)
        return
    out.ids.extend(text.ids)
    out.skipped.extend(text.skipped)
    out.files.extend(text.files)


async def upload_pages(
    files: Sequence[UploadedFile],
    metadata: Mapping[str, Any] | None,
    pipe: PagePipeline,
    add_text: AddText,
    progress: Progress | None = None,
) -> UploadResult:
    """Every PDF of `files` as page images through `pipe`, then the other files through `add_text`; the file
    reports list the PDFs first."""
    if not files:
        raise InvalidRequestError("upload at least one file (multipart/form-data file parts)", param="files")
    out, counter = UploadResult(), _Counter(progress)
    errors: list[RetrievalError] = []
    seen: set[str] = set()
    for f in (f for f in files if _is_pdf(f)):
        if f.name in seen:
            out.files.append(FileResult(f.name, 0, f"`{f.name}` appears twice in one upload"))
            continue
        seen.add(f.name)
        error = await _pdf(pipe, f, metadata or {}, counter, out)
        if error is not None:
            errors.append(error)
    others = [f for f in files if not _is_pdf(f)]
    if others:
        await _text(others, add_text, progress, out)
    if all(r.error for r in out.files):
        if len(errors) == 1 and len(files) == 1:
            raise errors[0]
        names = "; ".join(f"{r.name}: {r.error}" for r in out.files)
        raise InvalidRequestError(f"no uploaded file could be read: {names}", param="files")
    return out
