"""Row decoding for reads (retrieval/store/reads.py): column lists, vector kinds, chunk ids, corrupt JSON."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from retrieval.errors import InvalidRequestError, StorageError
from retrieval.store.codecs import encode_dense, encode_multivector, encode_sparse
from retrieval.store.reads import as_chunk_ids, check_vectors, chunk_row, chunk_select, load_json

BASE: tuple[Any, ...] = (5, "d#1", "d", 1, None, 3, 9, "chunk", '{"y": 2}', "f.txt", 12)


def test_vector_kinds_come_back_in_storage_order() -> None:
    assert check_vectors(["sparse", "dense"]) == ("dense", "sparse") and check_vectors([]) == ()
    for bad in ("dense", ["dense", "colbert"]):
        with pytest.raises(InvalidRequestError, match=r"unknown vector kind") as err:
            check_vectors(bad)
        assert err.value.param == "vectors" and err.value.allowed == ["dense", "multivector", "sparse"]


def test_select_lists_the_base_then_each_kinds_columns() -> None:
    plain = chunk_select(())
    assert plain.startswith("SELECT c.chunk_id, c.key, ") and "c.dense" not in plain and " JOIN documents d " in plain
    full = chunk_select(("dense", "multivector", "sparse"))
    assert "c.seq, c.dense, c.multivector, c.mv_rows, c.mv_dim, c.sparse_ids, c.sparse_weights FROM" in full


def test_a_row_decodes_with_the_requested_vectors() -> None:
    row = chunk_row(BASE, ())
    assert (row.chunk_id, row.key, row.doc_id, row.position, row.char_start, row.char_end) == (5, "d#1", "d", 1, 3, 9)
    assert (row.text, row.metadata, row.source, row.seq, row.dense) == ("chunk", {"y": 2}, "f.txt", 12, None)
    mv, rows, width = encode_multivector(np.ones((2, 3), np.float32))
    full = chunk_row(
        (*BASE, encode_dense(np.array([0.5], np.float32)), mv, rows, width, *encode_sparse({4: 1.0})),
        ("dense", "multivector", "sparse"),
    )
    assert full.dense is not None and full.dense.tolist() == [0.5]
    assert full.multivector is not None and full.multivector.shape == (2, 3) and full.sparse == {4: 1.0}
    missing = chunk_row((*BASE, None, None, None), ("dense", "sparse"))
    assert (missing.dense, missing.sparse) == (None, None)


def test_corrupt_metadata_and_bad_ids() -> None:
    with pytest.raises(StorageError, match=r"stored metadata of `d` is not valid JSON"):
        chunk_row((*BASE[:8], "{oops", *BASE[9:]), ())
    assert load_json("[1]", "x") == [1]
    assert as_chunk_ids([3, 1]).tolist() == [3, 1] and as_chunk_ids([]).dtype == np.int64
    assert as_chunk_ids(np.array([2], np.uint32)).dtype == np.int64
    for bad in ([[1]], [1.5], ["a"]):
        with pytest.raises(InvalidRequestError, match=r"chunk ids must be a 1-D integer array") as err:
            as_chunk_ids(bad)
        assert err.value.param == "chunk_ids"
