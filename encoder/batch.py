"""Padded batches and the token-budget batch planner shared by the online batcher and the offline path."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from encoder.types import TokenizedInput

__all__ = ["Batch", "collate", "plan_batches", "scatter_rows", "to_device"]


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


def collate(
    items: Sequence[TokenizedInput], pad_id: int, device: torch.device | str = "cpu", width: int | None = None
) -> Batch:
    """Right-pad `items` to the longest one (or to `width` columns when that is wider: bucketed shapes for a
    compiled model). Right padding keeps positions correct for causal models too.

    Vectorised: each field is flattened once into a packed int64 buffer and scattered into the (b, L) grid
    through the boolean mask `arange(L) < lengths[:, None]`. On CUDA the grids are staged in pinned memory
    and copied with `non_blocking=True`, so the copy overlaps whatever the GPU is still running.
    """
    lengths = np.fromiter((len(it) for it in items), dtype=np.int64, count=len(items))
    mask = np.arange(max(int(lengths.max()), width or 0)) < lengths[:, None]
    ids = scatter_rows(_flat(items, "input_ids", None), mask, pad_id)
    attn = mask.astype(np.int64) if all(it.attention_mask is None for it in items) else None
    if attn is None:
        attn = scatter_rows(_flat(items, "attention_mask", 1), mask, 0)
    keep = attn if all(it.keep_mask is None for it in items) else scatter_rows(_flat_keep(items), mask, 0)
    has_types = any(it.token_type_ids is not None for it in items)
    types = scatter_rows(_flat(items, "token_type_ids", 0), mask, 0) if has_types else None
    dev = torch.device(device)
    pixels, grids = _images(items, dev)
    attention = to_device(attn, dev)
    return Batch(
        input_ids=to_device(ids, dev),
        attention_mask=attention,
        keep_mask=attention if keep is attn else to_device(keep, dev),  # read-only: sharing is safe
        token_type_ids=None if types is None else to_device(types, dev),
        items=list(items),
        pixel_values=pixels,
        image_grid_thw=grids,
    )


def scatter_rows(flat: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_], fill: int) -> npt.NDArray[np.int64]:
    """int64 (b, L) grid holding the packed `flat` (sum of row lengths,) row by row where `mask` is True.

    >>> scatter_rows(np.array([7, 8, 9]), np.array([[True, True], [True, False]]), 0).tolist()
    [[7, 8], [9, 0]]
    """
    grid = np.full(mask.shape, fill, dtype=np.int64)
    grid[mask] = flat
    return grid


def to_device(array: npt.NDArray[np.int64], device: torch.device) -> torch.Tensor:
    """A CPU tensor sharing `array`, or on CUDA a pinned copy sent with `non_blocking=True`."""
    tensor = torch.from_numpy(array)
    if device.type != "cuda":
        return tensor if device.type == "cpu" else tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def _flat(items: Sequence[TokenizedInput], field: str, default: int | None) -> npt.NDArray[np.int64]:
    """Every item's `field` list back to back (a None field stands for `default` repeated len(item) times)."""
    total = sum(len(it) for it in items)
    rows = (getattr(it, field) or ([default] * len(it) if default is not None else []) for it in items)
    return np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=total)


def _flat_keep(items: Sequence[TokenizedInput]) -> npt.NDArray[np.int64]:
    """Keep masks back to back; an item without one keeps what it attends to."""
    rows = (it.keep_mask or it.attention_mask or [1] * len(it) for it in items)
    total = sum(len(it) for it in items)
    return np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=total)


def plan_batches(
    lengths: Sequence[int],
    max_batch_tokens: int,
    max_batch_size: int,
    overhead_tokens: int | None = None,
    max_padding: float | None = None,
) -> list[list[int]]:
    """Group indices into batches of similar length, each within rows * longest_row <= max_batch_tokens.

    With `overhead_tokens` None: greedy, shortest first, as large as the budget allows (right for GPUs,
    where a forward call is expensive and padding cheap). With a number: the split of the length-sorted
    inputs that minimises padded tokens + `overhead_tokens` per forward call (exact dynamic programme;
    right for CPUs, where compute grows with padded tokens and a call costs a few dozen tokens' worth).
    `max_padding` (greedy only) also closes a batch before padding would exceed that fraction of its
    padded tokens: length buckets whose edges follow the data (CUDA servers use 0.15).
    An input longer than the budget still forms a batch of one.

    >>> plan_batches([5, 1, 4, 2], max_batch_tokens=8, max_batch_size=8)
    [[1, 3], [2], [0]]
    >>> plan_batches([10, 100, 11, 101], max_batch_tokens=1000, max_batch_size=8, overhead_tokens=20)
    [[0, 2], [1, 3]]
    >>> plan_batches([10, 20, 11], max_batch_tokens=1000, max_batch_size=8, max_padding=0.15)
    [[0, 2], [1]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if overhead_tokens is None:
        return _greedy(order, lengths, max_batch_tokens, max_batch_size, max_padding)
    return _cheapest(order, lengths, max_batch_tokens, max_batch_size, overhead_tokens)


def _greedy(
    order: list[int], lengths: Sequence[int], budget: int, max_rows: int, max_padding: float | None
) -> list[list[int]]:
    batches: list[list[int]] = []
    current: list[int] = []
    real = 0  # unpadded tokens in `current`
    cap = 1.0 if max_padding is None else max_padding
    for i in order:
        width = lengths[i]  # sorted ascending: the newest is the longest
        padded = (len(current) + 1) * width
        if current and (padded > budget or len(current) >= max_rows or padded - real - width > cap * padded):
            batches.append(current)
            current, real = [], 0
        current.append(i)
        real += width
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
