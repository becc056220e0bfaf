"""BGE-M3 lexical (sparse) weights: per-position weights, the max-per-token-id dict, and the lexical score.

FlagEmbedding's inference rule: ``w = relu(sparse_linear(h))`` per position; for every (id, w) skip the
special ids (cls/bos, eos, pad, unk) and ``w <= 0``; keep the **max** weight per token id. Imports torch only.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["lexical_score", "lexical_weights", "sparse_to_arrays", "token_weights"]


def token_weights(hidden: torch.Tensor, head: torch.nn.Linear, activation: bool = True) -> torch.Tensor:
    """One weight per position: relu(head(hidden)) squeezed.

    hidden: float (..., L, h); head: Linear(h, 1). Returns float32 (..., L).
    `activation=False` skips the relu.

    >>> lin = torch.nn.Linear(2, 1); _ = torch.nn.init.ones_(lin.weight); _ = torch.nn.init.zeros_(lin.bias)
    >>> token_weights(torch.tensor([[1.0, 2.0], [-4.0, 1.0]]), lin).tolist()
    [3.0, 0.0]
    """
    raw = head(hidden.to(head.weight.dtype)).squeeze(-1).float()
    return torch.relu(raw) if activation else raw


def lexical_weights(
    ids: Sequence[int] | torch.Tensor, weights: Sequence[float] | torch.Tensor, special_ids: Collection[int]
) -> dict[int, float]:
    """``{token_id: max weight}`` over positions, dropping `special_ids` and weights <= 0.

    ids: int (n,); weights: float (n,), aligned with `ids`.

    >>> lexical_weights([0, 7, 9, 7, 2], [0.9, 0.1, 0.0, 0.4, 0.8], special_ids={0, 2})
    {7: 0.4}
    """
    id_list = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
    w_list = weights.float().tolist() if isinstance(weights, torch.Tensor) else [float(w) for w in weights]
    if len(id_list) != len(w_list):
        raise ValueError(f"ids ({len(id_list)}) and weights ({len(w_list)}) must have the same length")
    out: dict[int, float] = {}
    for token, w in zip(id_list, w_list, strict=True):
        if token in special_ids or w <= 0:
            continue
        if w > out.get(token, 0.0):
            out[token] = w
    return out


def lexical_score(query: Mapping[int, float], document: Mapping[int, float]) -> float:
    """BGE-M3 lexical matching score: sum over shared token ids of ``w_q * w_d``.

    >>> lexical_score({1: 0.5, 2: 0.25}, {2: 2.0, 3: 9.0})
    0.5
    """
    small, large = (query, document) if len(query) <= len(document) else (document, query)
    return float(sum(w * large[t] for t, w in small.items() if t in large))


def sparse_to_arrays(weights: Mapping[int, float]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """A sparse dict as ``(ids int64 (k,), weights float32 (k,))`` sorted by id (for sparse indexes).

    >>> sparse_to_arrays({9: 0.5, 3: 1.0})
    (array([3, 9]), array([1. , 0.5], dtype=float32))
    """
    ids = np.array(sorted(weights), dtype=np.int64)
    return ids, np.array([weights[int(i)] for i in ids], dtype=np.float32)
