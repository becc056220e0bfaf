"""Validation and encoding of a write (retrieval/store/writes.py prepare/check_deletes), before any SQL runs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from retrieval.errors import InvalidRequestError
from retrieval.store.codecs import decode_dense, decode_multivector, decode_sparse
from retrieval.store.records import ChunkRecord, DocumentRecord
from retrieval.store.writes import check_deletes, chunk_key, encode_json, prepare


def _doc(
    doc_id: str = "a", text: str = "hello world", chunks: tuple[Any, ...] | None = None, **kw: Any
) -> DocumentRecord:
    if chunks is None:
        chunks = (ChunkRecord("hello", 0, 0, 5), ChunkRecord("world", 1, 6, 11))
    return DocumentRecord(doc_id, text, kw.pop("metadata", {"k": "é"}), "h", chunks=chunks, **kw)


def test_prepare_encodes_keys_metadata_and_vectors() -> None:
    dense, mv = np.array([1.0, 2.0], np.float32), np.ones((3, 4), np.float32)
    chunk = ChunkRecord("hello", 0, 0, 5, page=2, dense=dense, multivector=mv, sparse={9: 0.5, 1: 2.0})
    [one] = prepare([_doc(chunks=(chunk,))], [])
    assert one.metadata_json == '{"k":"é"}' and one.dims == {"dense": 2, "multivector": 4}
    key, position, start, end, page, text, d, m, rows, width, ids, weights = one.chunks[0]
    assert (key, position, start, end, page, text, rows, width) == ("a", 0, 0, 5, 2, "hello", 3, 4)
    assert decode_dense(d).tolist() == [1.0, 2.0] and decode_multivector(m, rows, width).tolist() == mv.tolist()
    assert decode_sparse(ids, weights) == {1: 2.0, 9: 0.5}
    [two] = prepare([_doc()], ["other"])
    assert [c[0] for c in two.chunks] == ["a#0", "a#1"] and two.chunks[0][6:] == (None,) * 6


def _rejects(upserts: list[Any], deletes: list[str], param: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message) as err:
        prepare(upserts, deletes)
    assert err.value.param == param


def test_each_bad_document_is_named() -> None:
    _rejects(["x"], [], "documents", r"upserts must be DocumentRecord")
    _rejects([_doc("")], [], "id", r"a document id must be a non-empty string")
    _rejects([_doc(chunks=("c",))], [], "chunks", r"document `a`: chunks must be ChunkRecord")
    _rejects([_doc(chunks=(ChunkRecord("x", -1, 0, 1),))], [], "chunks.position", r"position >= 0")
    _rejects([_doc(chunks=(ChunkRecord("x", 0, 3, 20),))], [], "chunks.char_start", r"chunk 0: char range outside")
    _rejects([_doc(chunks=(ChunkRecord("x", 0, 0, 1), ChunkRecord("y", 0, 1, 2)))], [], "chunks.position", r"repeat")
    _rejects([_doc(metadata={"x": float("nan")})], [], "metadata", r"metadata is not JSON-serialisable")
    bad_dense = ChunkRecord("x", 0, 0, 1, dense=np.array([np.inf], np.float32))
    _rejects([_doc(chunks=(bad_dense,))], [], "vectors.dense", r"\(document `a`, chunk 0\)$")


def test_a_write_is_checked_as_a_whole() -> None:
    _rejects([_doc("a"), _doc("a")], [], "id", r"document `a` appears twice in one write")
    _rejects([_doc("a")], ["a"], "id", r"document `a` is both upserted and deleted")
    wide = ChunkRecord("x", 0, 0, 1, dense=np.ones(3, np.float32))
    narrow = ChunkRecord("y", 1, 1, 2, dense=np.ones(2, np.float32))
    _rejects([_doc(chunks=(wide, narrow))], [], "vectors.dense", r"widths differ within one write")
    _rejects(
        [_doc("a", chunks=(wide,)), _doc("b", chunks=(ChunkRecord("y", 0, 0, 1, dense=np.ones(2, np.float32)),))],
        [],
        "vectors.dense",
        r"widths differ",
    )


def test_small_helpers() -> None:
    assert chunk_key("d", 0, 1) == "d" and chunk_key("d", 3, 4) == "d#3"
    assert encode_json({"a": [1, None]}, "metadata") == '{"a":[1,null]}'
    with pytest.raises(InvalidRequestError, match=r"metadata must be a JSON object") as err:
        encode_json([1], "metadata")
    assert err.value.received == "list"
    assert check_deletes(("a", "b")) == ["a", "b"]
    for bad in ("ab", ["a", 1]):
        with pytest.raises(InvalidRequestError, match=r"deletes must be a sequence of document ids"):
            check_deletes(bad)  # type: ignore[arg-type]
