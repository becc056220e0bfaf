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
    pixel_values: torch.Tensor | None = None  # float (patches, C*T*P*P): every image of the batch, in row order
    image_grid_thw: torch.Tensor | None = None  # int64 (images, 3): (t, h, w) patch grid per image, in row order

    def select(self, rows: list[int]) -> Batch:
        """The sub-batch of `rows` (the same object when every row is selected)."""
        if len(rows) == len(self.items):
            return self
        items = [self.items[i] for i in rows]
        pixels, grids = _images(items, self.input_ids.device)
        return Batch(
            input_ids=self.input_ids[rows],
            attention_mask=self.attention_mask[rows],
            keep_mask=self.keep_mask[rows],
            token_type_ids=None if self.token_type_ids is None else self.token_type_ids[rows],
            items=items,
            pixel_values=pixels,
            image_grid_thw=grids,
        )


def _images(items: Sequence[TokenizedInput], device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The image tensors of `items` (`extras["pixel_values"]` / `extras["image_grid_thw"]`) joined in row order."""
    pixels = [it.extras["pixel_values"] for it in items if "pixel_values" in it.extras]
    if not pixels:
        return None, None
    grids = [it.extras["image_grid_thw"] for it in items if "pixel_values" in it.extras]
    return torch.cat(pixels).to(device), torch.cat(grids).to(device)


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
    pixels, grids = _images(items, dev)
    return Batch(
        input_ids=ids.to(dev),
        attention_mask=attn.to(dev),
        keep_mask=keep.to(dev),
        token_type_ids=None if types is None else types.to(dev),
        items=list(items),
        pixel_values=pixels,
        image_grid_thw=grids,
    )


def plan_batches(
    lengths: Sequence[int], max_batch_tokens: int, max_batch_size: int, overhead_tokens: int | None = None
) -> list[list[int]]:
    """Group indices into batches of similar length, each within rows * longest_row <= max_batch_tokens.

    With `overhead_tokens` None: greedy, shortest first, as large as the budget allows (right for GPUs,
    where a forward call is expensive and padding cheap). With a number: the split of the length-sorted
    inputs that minimises padded tokens + `overhead_tokens` per forward call (exact dynamic programme;
    right for CPUs, where compute grows with padded tokens and a call costs a few dozen tokens' worth).
    An input longer than the budget still forms a batch of one.

    >>> plan_batches([5, 1, 4, 2], max_batch_tokens=8, max_batch_size=8)
    [[1, 3], [2], [0]]
    >>> plan_batches([10, 100, 11, 101], max_batch_tokens=1000, max_batch_size=8, overhead_tokens=20)
    [[0, 2], [1, 3]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if overhead_tokens is None:
        return _greedy(order, lengths, max_batch_tokens, max_batch_size)
    return _cheapest(order, lengths, max_batch_tokens, max_batch_size, overhead_tokens)


def _greedy(order: list[int], lengths: Sequence[int], budget: int, max_rows: int) -> list[list[int]]:
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[i]  # sorted ascending: the newest is the longest
        if current and ((len(current) + 1) * width > budget or len(current) >= max_rows):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _cheapest(order: list[int], lengths: Sequence[int], budget: int, max_rows: int, overhead: int) -> list[list[int]]:
    """cost[i] = cheapest split of the i shortest inputs; a batch of sorted[j:i] costs (i-j)*len[i-1]+overhead."""
    sizes = [lengths[i] for i in order]
    n = len(sizes)
    cost = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for i in range(1, n + 1):
        width = sizes[i - 1]
        for j in range(i - 1, max(i - max_rows, 0) - 1, -1):
            rows = i - j
            if rows > 1 and rows * width > budget:
                break
            total = cost[j] + rows * width + overhead
            if total < cost[i]:
                cost[i], cut[i] = total, j
    batches: list[list[int]] = []
    i = n
    while i > 0:
        batches.append(order[cut[i] : i])
        i = cut[i]
    return batches[::-1]
