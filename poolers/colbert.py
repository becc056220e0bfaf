"""ColBERT input shaping and output vectors: marker, query expansion, skiplist masks, token vectors.

The input helpers work on plain lists of token ids (one sequence at a time, before collation); the output
helper works on padded tensors. Imports torch only.

Order of operations for one sequence (PyLate / ColBERT order): tokenize with ``length - 1`` tokens ->
:func:`insert_marker` at position 1 -> queries: :func:`expand_query` to ``length`` with the mask token;
documents: :func:`skiplist_keep` -> backbone -> projection -> :func:`token_vectors`
(Matryoshka truncate, then L2).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch

from poolers.matryoshka import truncate_and_normalize

__all__ = ["expand_query", "insert_marker", "skiplist_keep", "token_vectors"]


def insert_marker(ids: Sequence[int], marker_id: int | None) -> list[int]:
    """Put the query/document marker at position 1 (after [CLS] / <s>); None leaves ids unchanged.

    >>> insert_marker([101, 7, 8, 102], 1)
    [101, 1, 7, 8, 102]
    """
    if marker_id is None:
        return list(ids)
    return [*ids[:1], marker_id, *ids[1:]]


def expand_query(
    ids: Sequence[int], length: int, mask_id: int, attend_to_expansion: bool
) -> tuple[list[int], list[int]]:
    """Pad a query with `mask_id` up to `length` tokens (ColBERT query augmentation).

    Returns ``(input_ids, attention_mask)``, both of `length` items (ids longer than `length` are
    returned unchanged). The attention on expansion positions is 1 only when `attend_to_expansion`.

    >>> expand_query([101, 1, 7, 102], 6, 103, False)
    ([101, 1, 7, 102, 103, 103], [1, 1, 1, 1, 0, 0])
    """
    extra = max(length - len(ids), 0)
    flag = 1 if attend_to_expansion else 0
    return [*ids, *([mask_id] * extra)], [1] * len(ids) + [flag] * extra


def skiplist_keep(ids: Sequence[int], skip_ids: Collection[int]) -> list[int]:
    """1 for positions whose vectors a document keeps, 0 for skiplisted (punctuation) ids.

    >>> skiplist_keep([101, 2, 1012, 7, 102], {1012})
    [1, 1, 0, 1, 1]
    """
    return [0 if i in skip_ids else 1 for i in ids]


def token_vectors(
    projected: torch.Tensor,
    keep: torch.Tensor,
    dimensions: Sequence[int | None],
    normalize: Sequence[bool],
) -> list[torch.Tensor]:
    """Per row, the kept token vectors, Matryoshka-truncated then L2-normalised.

    projected: float (b, L, d) projected hidden states; keep: 0/1 (b, L);
    dimensions / normalize: one entry per row. Returns float32 (n_i, d_i) tensors on the same device.

    >>> h = torch.tensor([[[3.0, 4.0, 1.0], [1.0, 0.0, 0.0]]])
    >>> v = token_vectors(h, torch.tensor([[1, 0]]), [2], [True])
    >>> v[0].tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    mask = keep.bool()
    out = []
    for row, (dims, norm) in enumerate(zip(dimensions, normalize, strict=True)):
        out.append(truncate_and_normalize(projected[row][mask[row]].float(), dims, norm))
    return out
