"""Batch planning and collation (encoder/batch.py): budgets, partitions and padding against hand-computed values."""

from __future__ import annotations

import torch
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


def _naive_grid(rows: list[list[int]], width: int, fill: int) -> list[list[int]]:
    return [row + [fill] * (width - len(row)) for row in rows]


_row = st.lists(st.integers(0, 9), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_row, st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=12))
def test_vectorised_collate_matches_a_row_by_row_reference(spec: list[tuple[list[int], bool, bool, bool]]) -> None:
    items = [
        TokenizedInput(
            ids,
            token_type_ids=[x % 2 for x in ids] if types else None,
            attention_mask=[1] * (len(ids) - 1) + [0] if attn else None,
            keep_mask=[int(x % 3 == 0) for x in ids] if keep else None,
        )
        for ids, types, attn, keep in spec
    ]
    width = max(len(it) for it in items)
    batch = collate(items, pad_id=99)
    attention = [it.attention_mask or [1] * len(it) for it in items]
    assert batch.input_ids.tolist() == _naive_grid([it.input_ids for it in items], width, 99)
    assert batch.attention_mask.tolist() == _naive_grid(attention, width, 0)
    keep = [it.keep_mask or a for it, a in zip(items, attention, strict=True)]
    assert batch.keep_mask.tolist() == _naive_grid(keep, width, 0)
    if any(t for _, t, _, _ in spec):
        types = [it.token_type_ids or [0] * len(it) for it in items]
        assert batch.token_type_ids is not None
        assert batch.token_type_ids.tolist() == _naive_grid(types, width, 0)
    else:
        assert batch.token_type_ids is None
    assert batch.input_ids.dtype == batch.attention_mask.dtype == batch.keep_mask.dtype == torch.long


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=120), st.sampled_from([0.05, 0.15, 0.5]))
def test_padding_cap_bounds_every_greedy_batch(lengths: list[int], cap: float) -> None:
    batches = plan_batches(lengths, max_batch_tokens=4096, max_batch_size=32, max_padding=cap)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        widest = max(lengths[i] for i in b)
        padding = 1 - sum(lengths[i] for i in b) / (len(b) * widest)
        assert padding <= cap + 1e-12 and len(b) <= 32
        assert len(b) == 1 or len(b) * widest <= 4096
