"""Matryoshka output dimensions: vLLM's validation rules (exact texts) and truncate-then-normalise."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from poolers.pooling import l2_normalize

__all__ = ["MatryoshkaError", "truncate_and_normalize", "validate_dimensions"]


class MatryoshkaError(ValueError):
    """A requested `dimensions` value the model cannot honour; the message is vLLM's text."""


def validate_dimensions(
    dimensions: int | None,
    *,
    model_name: str,
    is_matryoshka: bool,
    matryoshka_dimensions: Sequence[int] | None,
    hidden_size: int,
) -> int | None:
    """Check `dimensions` as vLLM does; return it (None when absent) or raise `MatryoshkaError`."""
    if dimensions is None:
        return None
    if not is_matryoshka:
        raise MatryoshkaError(
            f'Model "{model_name}" does not support matryoshka representation, '
            "changing output dimensions will lead to poor results."
        )
    if matryoshka_dimensions:
        if dimensions not in matryoshka_dimensions:
            raise MatryoshkaError(
                f'Model "{model_name}" only supports {list(matryoshka_dimensions)} matryoshka dimensions, '
                "use other output dimensions will lead to poor results."
            )
    elif dimensions < 1:
        raise MatryoshkaError("Dimensions must be greater than 0")
    return min(dimensions, hidden_size)


def truncate_and_normalize(x: torch.Tensor, dimensions: int | None, normalize: bool) -> torch.Tensor:
    """Keep the first `dimensions` features of x (..., d), then L2-normalise if asked. Returns float32.

    >>> truncate_and_normalize(torch.tensor([[3.0, 4.0, 12.0]]), 2, True).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    if dimensions is not None:
        x = x[..., :dimensions]
    return l2_normalize(x) if normalize else x.float()
