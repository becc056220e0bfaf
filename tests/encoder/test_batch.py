"""Batch planning and collation (encoder/batch.py): budgets, partitions and padding against hand-computed values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from encoder import TokenizedInput
from encoder.batch import collate, plan_batches


def test_plan_batches_respects_budget_and_size() -> None:
    lengths = [3, 50, 7, 7, 20, 1, 64, 9]
    batches = plan_batches(lengths, max_batch_tokens=64, max_batch_size=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 64


def test_collate_right_pads_and_keeps_masks() -> None:
    items = [TokenizedInput([5, 6, 7]), TokenizedInput([8], attention_mask=[1], keep_mask=[0])]
    batch = collate(items, pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch.keep_mask.tolist() == [[1, 1, 1], [0, 0, 0]]


def _padded_cost(batches: list[list[int]], lengths: list[int], overhead: int) -> int:
    return sum(len(b) * max(lengths[i] for i in b) + overhead for b in batches)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=80), st.integers(0, 64))
def test_cheapest_plan_is_a_valid_partition_no_costlier_than_greedy(lengths: list[int], overhead: int) -> None:
    budget, rows = 1024, 16
    cheap = plan_batches(lengths, budget, rows, overhead)
    greedy = plan_batches(lengths, budget, rows)
    assert sorted(i for b in cheap for i in b) == list(range(len(lengths)))
    for b in cheap:
        assert len(b) <= rows
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= budget
    assert _padded_cost(cheap, lengths, overhead) <= _padded_cost(greedy, lengths, overhead)
