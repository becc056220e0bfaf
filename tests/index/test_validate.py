"""Index input validation (index/validate.py): typed errors naming the argument, and conversions that keep data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from index.errors import InvalidIdsError, InvalidQueryError, InvalidVectorsError
from index.validate import (
    as_allowed_ids,
    as_ids,
    as_matrix,
    as_multivectors,
    as_sparse_items,
    as_texts,
    check_k,
    describe,
)


def test_describe_names_dtype_and_shape() -> None:
    assert describe(np.zeros((3, 5))) == "float64 (3, 5)" and describe([1]) == "list"


@pytest.mark.parametrize(
    ("ids", "n", "expected"),
    [
        ([[1, 2]], None, "1-D integer array"),
        ([1.5], None, "1-D integer array"),
        ([1, 2], 3, "3 ids (one per item)"),
        ([0, -4], None, "non-negative int64 values"),
        ([3, 3], None, "unique ids within one call"),
    ],
)
def test_bad_ids(ids: Any, n: int | None, expected: str) -> None:
    with pytest.raises(InvalidIdsError) as err:
        as_ids(ids, n)
    assert err.value.param == "ids" and err.value.expected == expected


def test_good_ids_and_matrices_convert_without_loss() -> None:
    out = as_ids(np.array([5, 0, 2], np.uint8), 3)
    assert out.dtype == np.int64 and out.tolist() == [5, 0, 2]
    assert as_ids([]).shape == (0,)
    x = np.arange(6, dtype=np.float64).reshape(3, 2)
    m = as_matrix(x, 2)
    assert m.dtype == np.float32 and m.flags.c_contiguous and m.tolist() == x.tolist()
    same = np.ones((2, 2), np.float32)
    assert as_matrix(same, 2) is same  # no copy when already right


def test_bad_matrices_raise_by_role() -> None:
    with pytest.raises(
        InvalidVectorsError, match=r"invalid items: expected float32 \(n, 4\), received float32 \(2, 3\)"
    ):
        as_matrix(np.zeros((2, 3), np.float32), 4)
    with pytest.raises(InvalidQueryError, match=r"expected finite values, received NaN or inf"):
        as_matrix(np.array([[np.nan, 0.0]]), 2, "queries")
    with pytest.raises(InvalidVectorsError, match=r"received int64 \(1, 2\)"):
        as_matrix(np.zeros((1, 2), np.int64), 2)


def test_multivectors_sparse_and_texts() -> None:
    assert [m.shape for m in as_multivectors(np.zeros((2, 3, 4)), 4)] == [(3, 4), (3, 4)]
    with pytest.raises(InvalidVectorsError) as empty:
        as_multivectors([np.zeros((1, 4)), np.zeros((0, 4))], 4)
    assert empty.value.param == "items[1]" and empty.value.received == "0 vectors"
    with pytest.raises(InvalidVectorsError, match=r"list of float32 \(m_i, 4\)"):
        as_multivectors(7, 4)
    assert as_sparse_items([{1: 0.5, np.int64(2): 1.0}]) == [{1: 0.5, 2: 1.0}]
    for bad, received in [({-1: 1.0}, "-1"), ({True: 1.0}, "True"), ({1: float("inf")}, "inf")]:
        with pytest.raises(InvalidVectorsError) as err:
            as_sparse_items([{}, bad])
        assert err.value.param == "items[1]" and err.value.received == received
    with pytest.raises(InvalidVectorsError, match=r"expected dict \{int: float\}, received list"):
        as_sparse_items([[1]])
    assert as_texts(("a", "b")) == ["a", "b"]
    with pytest.raises(InvalidVectorsError, match=r"expected list of str, received str"):
        as_texts("ab")
    with pytest.raises(InvalidVectorsError) as not_str:
        as_texts(["a", 3])
    assert not_str.value.param == "items[1]"


def test_k_and_allowed_ids() -> None:
    assert check_k(np.int32(3)) == 3 and type(check_k(np.int32(3))) is int
    for bad in (0, True, 2.0, "3"):
        with pytest.raises(InvalidQueryError) as err:
            check_k(bad)
        assert err.value.param == "k"
    assert as_allowed_ids(None) is None
    assert as_allowed_ids([4, 2]).tolist() == [4, 2] and as_allowed_ids([]).dtype == np.int64  # type: ignore[union-attr]
    with pytest.raises(InvalidQueryError, match=r"None or 1-D integer array"):
        as_allowed_ids([[1]])
