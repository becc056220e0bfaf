"""Sequence pooling (CLS/LAST/MEAN/ALL) against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from poolers import pool, pool_all


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
