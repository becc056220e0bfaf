"""EncodeResult (encoder/results.py): one row per input or an error, numpy float32 accessors, BGE-M3 rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoder.results import EncodeResult
from encoder.types import M3Output


def test_a_dropped_row_is_an_error_not_a_short_result() -> None:
    with pytest.raises(RuntimeError, match=r"encoder produced 1 rows for 2 inputs"):
        EncodeResult("embed", [torch.zeros(3)], [[1, 2], [3]])


def test_dense_and_multivectors_are_float32_numpy_in_input_order() -> None:
    rows = [torch.tensor([1.0, 2.0], dtype=torch.float16), torch.tensor([3.0, 4.0], dtype=torch.bfloat16)]
    result = EncodeResult("embed", rows, [[5, 6, 7], [8]])
    dense = result.dense()
    assert dense.dtype == np.float32 and dense.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert result.prompt_tokens == [3, 1]
    multi = EncodeResult("token_embed", [torch.ones(3, 2, dtype=torch.float64), torch.zeros(1, 2)], [[1], [2]])
    assert [(m.dtype, m.shape) for m in multi.multivectors()] == [(np.float32, (3, 2)), (np.float32, (1, 2))]
    empty = EncodeResult("embed", [], [])
    assert empty.dense().shape == (0, 0) and empty.dense().dtype == np.float32


def test_scores_take_the_first_logit_of_each_row() -> None:
    result = EncodeResult("score", [torch.tensor([0.25]), torch.tensor([[-1.5]])], [[1], [2]])
    scores = result.scores()
    assert scores.dtype == np.float32 and scores.tolist() == [0.25, -1.5]
    assert [r.tolist() for r in result.rows()] == [[0.25], [[-1.5]]]


def test_m3_rows_come_from_the_three_in_one_outputs() -> None:
    m3 = [
        M3Output(np.array([1.0, 0.0], np.float32), np.ones((2, 3), np.float32), {7: 0.5}),
        M3Output(np.array([0.0, 1.0], np.float32), np.zeros((1, 3), np.float32), {}),
    ]
    result = EncodeResult("embed&token_embed&token_classify", [], [[1, 2, 7], [1, 3]], m3=m3)
    assert result.dense().tolist() == [[1.0, 0.0], [0.0, 1.0]] and result.dense().dtype == np.float32
    assert [m.shape for m in result.multivectors()] == [(2, 3), (1, 3)]
    assert result.sparse() == [{7: 0.5}, {}]
    with pytest.raises(RuntimeError, match=r"2 rows for 1 inputs"):
        EncodeResult("embed&token_embed&token_classify", [], [[1]], m3=m3)
