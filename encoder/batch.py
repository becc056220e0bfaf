"""Padded batches and the token-budget batch planner shared by the online batcher and the offline path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from encoder.types import TokenizedInput

__all__ = ["Batch", "collate", "plan_batches"]


@dataclass(slots=True)
class Batch:
    """Right-padded model input. Every tensor is (b, L) int64 on the target device."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    keep_mask: torch.Tensor  # positions a token-level task returns (defaults to attention_mask)
    token_type_ids: torch.Tensor | None
    items: list[TokenizedInput]

    def select(self, rows: list[int]) -> Batch:
        """The sub-batch of `rows` (the same object when every row is selected)."""
        if len(rows) == len(self.items):
            return self
        return Batch(
            input_ids=self.input_ids[rows],
            attention_mask=self.attention_mask[rows],
            keep_mask=self.keep_mask[rows],
            token_type_ids=None if self.token_type_ids is None else self.token_type_ids[rows],
            items=[self.items[i] for i in rows],
        )


def collate(items: Sequence[TokenizedInput], pad_id: int, device: torch.device | str = "cpu") -> Batch:
    """Right-pad `items` to the longest one. Right padding keeps positions correct for causal models too."""
    width = max(len(it) for it in items)
    n = len(items)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    keep = torch.zeros((n, width), dtype=torch.long)
    has_types = any(it.token_type_ids is not None for it in items)
    types = torch.zeros((n, width), dtype=torch.long) if has_types else None
    for row, it in enumerate(items):
        length = len(it)
        ids[row, :length] = torch.tensor(it.input_ids, dtype=torch.long)
        attn[row, :length] = 1 if it.attention_mask is None else torch.tensor(it.attention_mask)
        keep[row, :length] = attn[row, :length] if it.keep_mask is None else torch.tensor(it.keep_mask)
        if types is not None and it.token_type_ids is not None:
            types[row, :length] = torch.tensor(it.token_type_ids, dtype=torch.long)
    dev = torch.device(device)
    return Batch(
        input_ids=ids.to(dev),
        attention_mask=attn.to(dev),
        keep_mask=keep.to(dev),
        token_type_ids=None if types is None else types.to(dev),
        items=list(items),
    )


def plan_batches(lengths: Sequence[int], max_batch_tokens: int, max_batch_size: int) -> list[list[int]]:
    """Group indices into batches, shortest first, so that rows * longest_row <= max_batch_tokens.

    A single input longer than the budget still forms a batch of one.

    >>> plan_batches([5, 1, 4, 2], max_batch_tokens=8, max_batch_size=8)
    [[1, 3], [2], [0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[i]  # sorted ascending: the newest is the longest
        if current and ((len(current) + 1) * width > max_batch_tokens or len(current) >= max_batch_size):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
