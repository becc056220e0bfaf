"""Walking folders (sorted, hidden and unsupported left out), names relative to the root, per-file reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.errors import InvalidRequestError
from retrieval.ingest.files import FileReport, iter_paths, open_documents, read_documents, try_read, walk
from retrieval.ingest.records import JsonlReader
from tests.fixtures.pdfs import write_corrupt_pdf, write_pdf


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "b.txt").write_text("bee")
    (root / "A.MD").write_text("---\ntitle: A\n---\nalpha")
    (root / ".hidden.txt").write_text("secret")
    (root / ".git" / "config.txt").write_text("secret")
    (root / "image.png").write_bytes(b"\x89PNG")
    (root / "notes.txt.bak").write_text("old")
    (root / "sub" / "c.jsonl").write_text(json.dumps({"id": "c1", "text": "see"}) + "\n" + json.dumps({"id": "c2"}))
    write_pdf(root / "sub" / "deeper" / "r.pdf", ["page one", "", "page three"])
    write_corrupt_pdf(root / "sub" / "broken.pdf")
    (root / "sub" / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    return root


EXPECTED = ["A.MD", "b.txt", "sub/broken.pdf", "sub/c.jsonl", "sub/deeper/r.pdf", "sub/latin1.txt"]


def test_folders_are_walked_sorted_without_hidden_or_unsupported(tree: Path) -> None:
    assert [p.relative_to(tree).as_posix() for p in iter_paths([tree])] == EXPECTED
    assert all(root == tree for _, root in walk([tree]))


def test_named_files_are_yielded_as_given_once(tree: Path) -> None:
    named = [tree / "image.png", tree / "b.txt", tree / "missing.txt"]
    got = list(walk([*named, tree, tree / "b.txt"]))
    assert got[:3] == [(p, None) for p in named]
    assert [p.relative_to(tree).as_posix() for p, _ in got[3:]] == [e for e in EXPECTED if e != "b.txt"]


def test_symlinked_folders_are_not_followed(tree: Path) -> None:
    (tree / "sub" / "loop").symlink_to(tree, target_is_directory=True)
    assert [p.relative_to(tree).as_posix() for p in iter_paths([tree])] == EXPECTED


def test_names_are_relative_posix_paths(tree: Path) -> None:
    pdf = tree / "sub" / "deeper" / "r.pdf"
    docs = read_documents(pdf, tree)
    assert [(d.id, d.source, d.page, d.text) for d in docs] == [
        ("sub/deeper/r.pdf#page=1", "sub/deeper/r.pdf", 1, "page one"),
        ("sub/deeper/r.pdf#page=3", "sub/deeper/r.pdf", 3, "page three"),
    ]
    assert [d.id for d in read_documents(pdf)] == ["r.pdf#page=1", "r.pdf#page=3"]
    (md,) = read_documents(tree / "A.MD", tree)
    assert (md.id, md.text, md.metadata) == ("A.MD", "alpha", {"title": "A", "source": "A.MD"})


def test_jsonl_is_streamed(tree: Path) -> None:
    source = open_documents(tree / "sub" / "c.jsonl", tree)
    assert isinstance(source, JsonlReader)
    assert [(d.id, d.source) for d in source] == [("c1", "sub/c.jsonl")]
    assert source.skipped == 1


def test_a_batch_reports_each_bad_file_and_reads_the_rest(tree: Path) -> None:
    results = [try_read(path, root) for path, root in walk([tree, tree / "image.png", tree / "gone.md"])]
    reports = {r.path.name: r for _, r in results}
    assert {n: (r.documents, r.skipped) for n, r in reports.items() if r.error is None} == {
        "A.MD": (1, 0),
        "b.txt": (1, 0),
        "c.jsonl": (1, 1),
        "r.pdf": (2, 1),
    }
    errors = {n: r.error for n, r in reports.items() if r.error is not None}
    assert set(errors) == {"broken.pdf", "latin1.txt", "image.png", "gone.md"}
    assert "`sub/broken.pdf` is not a readable PDF" in errors["broken.pdf"]
    assert "`sub/latin1.txt` is not UTF-8 text: byte 0xe9 at offset 3" in errors["latin1.txt"]
    assert "unsupported file type" in errors["image.png"]
    assert "`gone.md` cannot be read" in errors["gone.md"]
    assert all(r.documents == 0 for n, r in reports.items() if n in errors)
    assert sum(len(docs) for docs, _ in results) == 5


def test_unreadable_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError) as err:
        read_documents(tmp_path / "nope.jsonl")
    assert (err.value.param, err.value.received) == ("file", "nope.jsonl")
    docs, report = try_read(tmp_path)  # a folder is not a file
    assert docs == [] and report == FileReport(tmp_path, 0, report.error) and report.error
