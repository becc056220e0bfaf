"""Files to request-sized batches: sizes, repeated ids, metadata merging, per-file reports, unsupported files."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrieval.ingest.batches import FileBatches, Item, document_json, unsupported_files
from retrieval.ingest.documents import SourceDocument
from tests.fixtures.pdfs import write_corrupt_pdf, write_pdf


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / ".cache").mkdir()
    (root / "a.md").write_text("---\ntag: md\n---\nalpha")
    (root / "b.txt").write_text("bee")
    (root / "image.png").write_bytes(b"\x89PNG")
    (root / ".cache" / "x.bin").write_bytes(b"\0")
    (root / "sub" / "notes.docx").write_bytes(b"PK")
    write_pdf(root / "sub" / "r.pdf", ["page one", "", "page three"])
    write_corrupt_pdf(root / "sub" / "broken.pdf")
    lines = [json.dumps({"_id": f"d{i}", "title": "T", "text": f"body {i}"}) for i in range(5)]
    (root / "sub" / "corpus.jsonl").write_text("\n".join([*lines[:3], "{not json", *lines[3:]]) + "\n")
    return root


def test_batches_report_every_file_and_keep_what_was_read_before_a_fault(tree: Path) -> None:
    source = FileBatches([tree], size=2, metadata={"team": "x", "tag": "flag"})
    batches = list(source)
    docs = [item.doc for batch in batches for item in batch]
    assert [len(b) for b in batches] == [2, 2, 2, 1]
    assert [d.id for d in docs] == ["a.md", "b.txt", "d0", "d1", "d2", "sub/r.pdf#page=1", "sub/r.pdf#page=3"]
    assert docs[0].metadata == {"team": "x", "tag": "md", "source": "a.md"}  # the document's own keys win
    assert docs[1].metadata == {"team": "x", "tag": "flag", "source": "b.txt"}
    assert docs[2].text == "T body 0"
    reports = {r.path.relative_to(tree).as_posix(): r for r in source.reports}
    assert list(reports) == ["a.md", "b.txt", "sub/broken.pdf", "sub/corpus.jsonl", "sub/r.pdf"]
    assert reports["sub/broken.pdf"].documents == 0 and reports["sub/broken.pdf"].error
    assert reports["sub/corpus.jsonl"].documents == 3 and "line 4" in (reports["sub/corpus.jsonl"].error or "")
    assert (reports["sub/r.pdf"].documents, reports["sub/r.pdf"].skipped, reports["sub/r.pdf"].error) == (2, 1, None)
    assert source.files == 5
    assert [p.relative_to(tree).as_posix() for p in unsupported_files([tree])] == ["image.png", "sub/notes.docx"]


def test_a_file_named_directly_is_read_or_reported(tree: Path) -> None:
    source = FileBatches([tree / "sub" / "notes.docx", tree / "missing.txt", tree / "b.txt"])
    assert [[i.doc.id for i in b] for b in source] == [["b.txt"]]
    errors = [r.error for r in source.reports]
    assert "unsupported file type" in (errors[0] or "") and "cannot be read" in (errors[1] or "")
    assert unsupported_files([tree / "sub" / "notes.docx"]) == []


@given(st.lists(st.sampled_from("abcdef"), max_size=30), st.integers(1, 7))
def test_no_batch_holds_an_id_twice_and_order_is_kept(ids: list[str], size: int) -> None:
    source = FileBatches([], size=size)
    items = [Item(Path(f"{i}.txt"), SourceDocument(i, "t")) for i in ids]
    source._items = lambda: iter(items)  # type: ignore[method-assign]
    batches = list(source)
    assert [i.doc.id for b in batches for i in b] == ids
    for b in batches:
        assert 1 <= len(b) <= size and len({i.doc.id for i in b}) == len(b)
    # a batch closes early only when the next id is already in it
    for b, nxt in itertools.pairwise(batches):
        assert len(b) == size or nxt[0].doc.id in {i.doc.id for i in b}


def test_document_json_sends_file_and_page_and_keeps_them_in_metadata() -> None:
    page = SourceDocument("r.pdf#page=2", "x", {"source": "r.pdf", "page": 2}, source="r.pdf", page=2)
    meta = {"source": "r.pdf", "page": 2}
    assert document_json(page) == {"id": "r.pdf#page=2", "text": "x", "metadata": meta, "source": "r.pdf", "page": 2}
    assert document_json(SourceDocument("j", "y", vectors={"dense": [1.0]}))["vectors"] == {"dense": [1.0]}
