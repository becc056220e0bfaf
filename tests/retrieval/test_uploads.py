"""Uploaded files (retrieval/ingest/uploads.py): per-file reports, upload-wide metadata, batches and progress."""

from __future__ import annotations

import asyncio

import pytest

from retrieval.errors import InvalidRequestError
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.uploads import BATCH, FileResult, UploadedFile, ingest_files, parse_uploads


def test_each_file_is_reported_and_bad_ones_do_not_stop_the_rest() -> None:
    files = [
        UploadedFile("a.md", b"---\ntag: own\n---\nbody"),
        UploadedFile("b.bin", b"data"),
        UploadedFile("a.md", b"again"),
        UploadedFile("c.txt", b"\xff"),
        UploadedFile("d.txt", b"plain"),
    ]
    docs, reports = parse_uploads(files, {"tag": "upload", "team": "x"})
    assert [(r.name, r.documents, r.error is None) for r in reports] == [
        ("a.md", 1, True),
        ("b.bin", 0, False),
        ("a.md", 0, False),
        ("c.txt", 0, False),
        ("d.txt", 1, True),
    ]
    assert reports[2].error == "`a.md` appears twice in one upload" and "not UTF-8" in str(reports[3].error)
    assert [d.metadata for d in docs] == [
        {"tag": "own", "team": "x", "source": "a.md"},
        {"tag": "upload", "team": "x", "source": "d.txt"},
    ]  # the file's own metadata wins


def test_no_file_or_only_bad_files_is_a_400() -> None:
    with pytest.raises(InvalidRequestError, match=r"upload at least one file") as err:
        parse_uploads([])
    assert err.value.param == "files"
    with pytest.raises(InvalidRequestError, match=r"no uploaded file could be read: x\.bin: .*; y\.txt: "):
        parse_uploads([UploadedFile("x.bin", b"1"), UploadedFile("y.txt", b"\xff")])


def test_documents_are_written_in_batches_with_progress() -> None:
    docs = [SourceDocument(f"d{i}", "t") for i in range(BATCH * 2 + 5)]
    batches: list[int] = []
    progress: list[tuple[int, int]] = []

    async def write(batch: list[SourceDocument]) -> tuple[list[str], list[str]]:
        batches.append(len(batch))
        return [d.id for d in batch if d.id != "d3"], ["d3"] if any(d.id == "d3" for d in batch) else []

    reports = [FileResult("f", len(docs))]
    result = asyncio.run(ingest_files(docs, reports, write, lambda done, total: progress.append((done, total))))
    n = len(docs)
    assert batches == [BATCH, BATCH, 5] and progress == [(0, n), (BATCH, n), (2 * BATCH, n), (n, n)]
    assert result.skipped == ["d3"] and len(result.ids) == n - 1 and result.files == reports
