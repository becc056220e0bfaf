"""Pooling, normalisation, Matryoshka and activation rules against hand-computed values."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from poolers import (
    MatryoshkaError,
    apply_activation,
    classify_activation,
    pool,
    pool_all,
    validate_dimensions,
)
from poolers.matryoshka import truncate_and_normalize


def _padded(rows: list[list[float]], left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    hidden = torch.zeros(len(rows), width, 1)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        sl = slice(width - len(r), width) if left else slice(0, len(r))
        hidden[i, sl, 0] = torch.tensor(r)
        mask[i, sl] = 1
    return hidden, mask


@pytest.mark.parametrize("left", [False, True])
def test_last_and_mean_ignore_padding_on_either_side(left: bool) -> None:
    hidden, mask = _padded([[1.0, 2.0, 3.0], [5.0]], left)
    assert pool(hidden, mask, "LAST")[:, 0].tolist() == [3.0, 5.0]
    assert pool(hidden, mask, "MEAN")[:, 0].tolist() == [2.0, 5.0]
    assert [t[:, 0].tolist() for t in pool_all(hidden, mask)] == [[1.0, 2.0, 3.0], [5.0]]


def test_cls_takes_first_position_and_all_is_not_a_sequence_pooling() -> None:
    hidden, mask = _padded([[7.0, 1.0]], False)
    assert pool(hidden, mask, "CLS").tolist() == [[7.0]]
    with pytest.raises(ValueError, match=r"not a sequence pooling"):
        pool(hidden, mask, "ALL")


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


def test_activation_rules_follow_vllm() -> None:
    assert classify_activation(1, None) == "sigmoid"
    assert classify_activation(2, None) == "softmax"
    assert classify_activation(4, "multi_label_classification") == "sigmoid"
    assert classify_activation(1, "regression") == "identity"
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.allclose(apply_activation(logits, "softmax").sum(-1), torch.tensor([1.0]))
    assert apply_activation(logits, "identity").tolist() == logits.tolist()
