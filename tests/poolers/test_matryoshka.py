"""Matryoshka truncation and dimension checks (poolers/matryoshka.py) against hand-computed values and vLLM's texts."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from poolers import MatryoshkaError, validate_dimensions
from poolers.matryoshka import truncate_and_normalize


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=16), st.integers(1, 16))
def test_truncate_then_normalize_has_unit_norm(values: list[float], dims: int) -> None:
    x = torch.tensor(values)
    if float(x[:dims].abs().sum()) < 1e-3:
        return
    out = truncate_and_normalize(x, dims, True)
    assert out.shape[0] == min(dims, len(values))
    assert abs(float(out.norm()) - 1.0) < 1e-5
    direction = x[:dims] / x[:dims].norm()
    assert torch.allclose(out, direction, atol=1e-6)


def test_matryoshka_errors_use_vllms_texts() -> None:
    with pytest.raises(MatryoshkaError) as not_m:
        validate_dimensions(8, model_name="m", is_matryoshka=False, matryoshka_dimensions=None, hidden_size=32)
    assert str(not_m.value) == (
        'Model "m" does not support matryoshka representation, changing output dimensions will lead to poor results.'
    )
    with pytest.raises(MatryoshkaError) as not_listed:
        validate_dimensions(5, model_name="m", is_matryoshka=True, matryoshka_dimensions=[8, 16], hidden_size=32)
    assert str(not_listed.value) == (
        'Model "m" only supports [8, 16] matryoshka dimensions, use other output dimensions will lead to poor results.'
    )
    with pytest.raises(MatryoshkaError, match=r"^Dimensions must be greater than 0$"):
        validate_dimensions(0, model_name="m", is_matryoshka=True, matryoshka_dimensions=None, hidden_size=32)
    assert (
        validate_dimensions(16, model_name="m", is_matryoshka=True, matryoshka_dimensions=[8, 16], hidden_size=32) == 16
    )
    assert (
        validate_dimensions(None, model_name="m", is_matryoshka=False, matryoshka_dimensions=None, hidden_size=8)
        is None
    )


def test_dimensions_are_capped_at_the_hidden_size_and_normalize_is_optional() -> None:
    assert validate_dimensions(64, model_name="m", is_matryoshka=True, matryoshka_dimensions=None, hidden_size=32) == 32
    x = torch.tensor([[3.0, 4.0, 12.0]], dtype=torch.float16)
    raw = truncate_and_normalize(x, 2, False)
    assert raw.tolist() == [[3.0, 4.0]] and raw.dtype == torch.float32
    assert truncate_and_normalize(x, None, True)[0].tolist() == pytest.approx([3 / 13, 4 / 13, 12 / 13], abs=1e-3)
