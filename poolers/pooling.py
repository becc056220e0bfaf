"""Sequence pooling over padded hidden states: CLS, MEAN (mask-aware), LAST (either padding side), ALL."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["PoolingType", "SequencePooling", "l2_normalize", "pool", "pool_all"]

PoolingType = Literal["CLS", "MEAN", "LAST", "ALL"]
SequencePooling = Literal["CLS", "MEAN", "LAST"]


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """L2-normalise the last dimension, computed in fp32 and returned in fp32.

    >>> l2_normalize(torch.tensor([[3.0, 4.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    return F.normalize(x.float(), p=2, dim=-1)


def _last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last attended position per row: int64 (b,). Works for left or right padding."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, torch.full_like(positions, -1)).amax(dim=1)


def pool(hidden: torch.Tensor, mask: torch.Tensor, kind: PoolingType) -> torch.Tensor:
    """Pool hidden states to one vector per row.

    hidden: (b, L, h) any float dtype; mask: (b, L) 0/1 attention mask (left or right padded).
    Returns float32 (b, h). ALL is not a sequence pooling: use `pool_all`.

    >>> h = torch.tensor([[[1.0], [3.0], [9.0]]]); m = torch.tensor([[1, 1, 0]])
    >>> pool(h, m, "MEAN").tolist(), pool(h, m, "LAST").tolist(), pool(h, m, "CLS").tolist()
    ([[2.0]], [[3.0]], [[1.0]])
    """
    hidden = hidden.float()
    if kind == "CLS":
        return hidden[:, 0]
    if kind == "MEAN":
        weights = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    if kind == "LAST":
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, _last_index(mask)]
    raise ValueError(f"{kind!r} is not a sequence pooling; expected CLS, MEAN or LAST")


def pool_all(hidden: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """ALL pooling: per row, the float32 (n_i, h) vectors of the positions where mask is 1, in order.

    >>> [t.tolist() for t in pool_all(torch.tensor([[[1.0], [2.0]]]), torch.tensor([[0, 1]]))]
    [[[2.0]]]
    """
    keep = mask.bool()
    hidden = hidden.float()
    return [hidden[i][keep[i]] for i in range(hidden.shape[0])]
