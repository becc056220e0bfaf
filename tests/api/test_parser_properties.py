"""Property tests of the request parsers: any input either parses to the documented shape or raises the
layer's typed error (a 4xx), never another exception (a 5xx). References are naive re-statements of the rules.

Score cardinalities (1:1, 1:N, N:N), metadata filters, base64 embeddings, sparse vectors.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import msgspec
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from api.encoding import encode_tensor
from api.schemas.score import ScoreRequest
from encoder.errors import InvalidInputError
from retrieval.errors import InvalidFilterError, InvalidRequestError
from retrieval.ingest.pipeline import _sparse
from retrieval.models.serving.scoring import _broadcast, _check_lengths, as_items
from retrieval.search.filters import matches, parse_filter

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
sides = st.text(max_size=5) | st.lists(st.text(max_size=5), max_size=5)


@settings(max_examples=150, deadline=None)
@given(queries=sides, documents=sides)
def test_score_cardinality(queries: str | list[str], documents: str | list[str]) -> None:
    req = msgspec.convert({"queries": queries, "documents": documents}, ScoreRequest)
    q, d = (as_items(side) for side in req.sides())
    valid = len(q) >= 1 and len(d) >= 1 and (len(q) == 1 or len(q) == len(d))  # 1:1, 1:N or N:N
    if not valid:
        with pytest.raises(InvalidInputError):
            _check_lengths(len(q), len(d))
        return
    _check_lengths(len(q), len(d))
    pairs = _broadcast(q, d)
    assert pairs == [(q[0] if len(q) == 1 else q[i], d[i]) for i in range(len(d))]


@settings(max_examples=200, deadline=None)
@given(raw=json_values, metadata=st.dictionaries(st.text(max_size=4), json_values, max_size=4))
def test_any_filter_parses_or_is_a_typed_error(raw: object, metadata: dict[str, Any]) -> None:
    try:
        parsed = parse_filter(raw)
    except InvalidFilterError as exc:
        assert exc.param is not None and exc.param.startswith("filter")
        return
    assert isinstance(matches(parsed, metadata), bool)  # a parsed filter evaluates on any metadata


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=64),
    dtype=st.sampled_from(["float32", "float16", "bfloat16"]),
    endianness=st.sampled_from(["native", "little", "big"]),
)
def test_base64_embeddings_round_trip(values: list[float], dtype: str, endianness: str) -> None:
    t = torch.tensor(values, dtype=torch.float32)
    text = encode_tensor(t, "base64", dtype, endianness)  # type: ignore[arg-type]
    assert isinstance(text, str)
    raw = base64.b64decode(text, validate=True)
    order = {"little": "<", "big": ">", "native": "="}[endianness]
    if dtype == "bfloat16":  # the top half of a float32
        halves = np.frombuffer(raw, dtype=f"{order}u2").astype(np.uint32) << 16
        decoded = halves.view(np.float32)
        expected = t.to(torch.bfloat16).to(torch.float32).numpy()
    else:
        decoded = np.frombuffer(raw, dtype=f"{order}{'f4' if dtype == 'float32' else 'f2'}").astype(np.float32)
        expected = t.to(getattr(torch, dtype)).to(torch.float32).numpy()
    np.testing.assert_array_equal(decoded, expected)


@settings(max_examples=150, deadline=None)
@given(value=json_values)
def test_sparse_vectors_parse_or_are_a_typed_error(value: object) -> None:
    try:
        parsed = _sparse(value)
    except InvalidRequestError as exc:
        assert exc.param == "vectors.sparse"
        return
    if value is None:
        assert parsed is None
        return
    assert isinstance(value, dict) and parsed is not None
    reference: dict[int, float] = {}
    for key, weight in value.items():  # token id -> weight; a later spelling of the same id wins
        reference[int(key)] = float(weight)
    assert parsed.keys() == reference.keys()
    assert all(parsed[k] == w or (math.isnan(w) and math.isnan(parsed[k])) for k, w in reference.items())
