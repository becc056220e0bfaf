"""Vector codecs: exact round trips (float16 rounding for multivectors) and the last-gate rejections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from retrieval.errors import InvalidRequestError, StorageError
from retrieval.store.codecs import (
    decode_dense,
    decode_multivector,
    decode_sparse,
    encode_dense,
    encode_multivector,
    encode_sparse,
)

_F32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
_F16_RANGE = st.floats(min_value=-60000, max_value=60000, width=32)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.integers(1, 64), elements=_F32))
def test_dense_round_trip_is_exact(vector: np.ndarray) -> None:
    blob = encode_dense(vector)
    assert len(blob) == 4 * vector.size
    out = decode_dense(blob)
    assert out.dtype == np.float32 and out.flags.writeable
    np.testing.assert_array_equal(out, vector)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12), elements=_F16_RANGE))
def test_multivector_round_trip_is_float16_rounding(vectors: np.ndarray) -> None:
    blob, rows, dim = encode_multivector(vectors)
    assert (rows, dim) == vectors.shape and len(blob) == 2 * vectors.size
    out = decode_multivector(blob, rows, dim)
    assert out.dtype == np.float32 and out.shape == vectors.shape
    np.testing.assert_array_equal(out, vectors.astype(np.float16).astype(np.float32))


def test_multivector_accepts_float16_input_unchanged() -> None:
    x = np.array([[0.1, 2.0], [3.5, -7.25]], dtype=np.float16)
    blob, _, _ = encode_multivector(x)
    assert blob == x.astype("<f2").tobytes()


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.integers(0, 2**31 - 1), _F32, max_size=40))
def test_sparse_round_trip_sorted(vector: dict[int, float]) -> None:
    ids, weights = encode_sparse(vector)
    raw_ids = np.frombuffer(ids, "<i4")
    assert list(raw_ids) == sorted(vector)
    out = decode_sparse(ids, weights)
    assert list(out) == sorted(vector)
    assert out == {k: float(np.float32(v)) for k, v in vector.items()}


def test_little_endian_layout() -> None:
    assert encode_dense([1.0]) == b"\x00\x00\x80\x3f"
    assert encode_sparse({1: 1.0}) == (b"\x01\x00\x00\x00", b"\x00\x00\x80\x3f")
    assert encode_multivector([[1.0]])[0] == b"\x00\x3c"


@pytest.mark.parametrize("bad", [[1.0, float("nan")], [float("inf")], [], [[1.0]], ["a"], [True, False], [1e39]])
def test_dense_rejects(bad: object) -> None:
    with pytest.raises(InvalidRequestError) as err:
        encode_dense(bad)
    assert err.value.param == "vectors.dense"


@pytest.mark.parametrize("bad", [[[1.0, float("nan")]], [1.0, 2.0], np.zeros((0, 4)), [[70000.0]], [[1.0], [2.0, 3.0]]])
def test_multivector_rejects(bad: object) -> None:
    with pytest.raises(InvalidRequestError) as err:
        encode_multivector(bad)
    assert err.value.param == "vectors.multivector"


@pytest.mark.parametrize("bad", [{1: float("nan")}, {-1: 1.0}, {2**31: 1.0}, {"3": 1.0}, {True: 1.0}, {1: "x"}, [1]])
def test_sparse_rejects(bad: object) -> None:
    with pytest.raises(InvalidRequestError) as err:
        encode_sparse(bad)  # type: ignore[arg-type]
    assert err.value.param == "vectors.sparse"


def test_empty_sparse_is_two_empty_blobs() -> None:
    assert encode_sparse({}) == (b"", b"")
    assert decode_sparse(b"", b"") == {}


def test_corrupt_blobs_are_storage_errors() -> None:
    with pytest.raises(StorageError):
        decode_dense(b"\x00\x00\x00")
    with pytest.raises(StorageError):
        decode_multivector(b"\x00" * 6, 2, 2)
    with pytest.raises(StorageError):
        decode_sparse(b"\x00" * 8, b"\x00" * 4)


def test_doctests() -> None:
    import doctest

    from retrieval.store import codecs, writes

    for module in (codecs, writes):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0
