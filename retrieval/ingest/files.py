"""Files and folders on disk to documents, with one :class:`FileReport` per file for the CLI's summary.

Folders are walked recursively in sorted order; hidden entries (names starting with ``.``) and files of an
unsupported type are left out, symlinked folders are not followed. A file named directly is always yielded,
so an unsupported or missing one is reported rather than ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import InvalidRequestError, RetrievalError
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.parsers import EXTENSIONS, ParsedFile, parse
from retrieval.ingest.records import JsonlReader

__all__ = ["FileReport", "iter_paths", "open_documents", "read_documents", "try_read", "walk"]


@dataclass(frozen=True)
class FileReport:
    """The outcome of reading one file."""

    path: Path  # the file as found on disk
    documents: int  # documents it yielded (0 on error)
    error: str | None  # why it could not be read, None on success
    skipped: int = 0  # pages / records without text, which yield no document


def _walk_dir(folder: Path) -> Iterator[Path]:
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if not entry.is_symlink():
                yield from _walk_dir(entry)
        elif entry.is_file() and entry.suffix.lower() in EXTENSIONS:
            yield entry


def walk(paths: Sequence[Path]) -> Iterator[tuple[Path, Path | None]]:
    """``(file, root)`` for every file to read: ``root`` is the folder it was found under, None if named.

    A file reached twice (named and inside a named folder) is yielded once, the first time.
    """
    seen: set[Path] = set()
    for given in paths:
        found: Iterable[tuple[Path, Path | None]] = (
            ((file, given) for file in _walk_dir(given)) if given.is_dir() else [(given, None)]
        )
        for file, root in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                yield file, root


def iter_paths(paths: Sequence[Path]) -> Iterator[Path]:
    """Files as given, and the supported, non-hidden files under each folder, recursively in sorted order."""
    for file, _root in walk(paths):
        yield file


def _name(path: Path, root: Path | None) -> str:
    return path.name if root is None else path.relative_to(root).as_posix()


def _unreadable(name: str, exc: OSError) -> InvalidRequestError:
    return InvalidRequestError(f"`{name}` cannot be read: {exc.strerror or exc}", param="file", received=name)


def _read_bytes(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(name, exc) from exc


def open_documents(path: Path, root: Path | None = None, *, max_pdf_pages: int = 2000) -> ParsedFile | JsonlReader:
    """The documents of one file, streamed for JSON Lines (a large corpus is never held whole).

    Iterate the result, then read its ``skipped``. The name (id prefix and ``source``) is the path relative to
    ``root`` in posix form, or the bare file name when ``root`` is None. Errors are those of
    :func:`~retrieval.ingest.parsers.parse`, raised here or, for JSON Lines, during iteration; a file that
    cannot be opened raises :class:`InvalidRequestError` with ``param="file"``.
    """
    name = _name(path, root)
    if EXTENSIONS.get(path.suffix.lower()) == "jsonl":
        return JsonlReader(name, _lines(path, name))
    return parse(name, _read_bytes(path, name), max_pdf_pages=max_pdf_pages)


def _lines(path: Path, name: str) -> Iterator[bytes]:
    try:
        with open(path, "rb") as f:
            yield from f
    except OSError as exc:
        raise _unreadable(name, exc) from exc


def read_documents(path: Path, root: Path | None = None, *, max_pdf_pages: int = 2000) -> list[SourceDocument]:
    """Every document of one file, named by its path relative to ``root`` (see :func:`open_documents`)."""
    return list(open_documents(path, root, max_pdf_pages=max_pdf_pages))


def try_read(
    path: Path, root: Path | None = None, *, max_pdf_pages: int = 2000
) -> tuple[list[SourceDocument], FileReport]:
    """:func:`read_documents` that never raises for a bad file: its error goes into the report instead."""
    try:
        source = open_documents(path, root, max_pdf_pages=max_pdf_pages)
        documents = list(source)
    except RetrievalError as exc:
        return [], FileReport(path, documents=0, error=exc.message)
    return documents, FileReport(path, documents=len(documents), error=None, skipped=source.skipped)
