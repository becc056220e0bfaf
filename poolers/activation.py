"""Output activations for classification, cross-encoder scores and reward heads."""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["ActivationName", "apply_activation", "classify_activation"]

ActivationName = Literal["softmax", "sigmoid", "identity", "tanh", "relu"]


def classify_activation(num_labels: int, problem_type: str | None) -> ActivationName:
    """vLLM's rule: regression -> identity; multi-label -> sigmoid; else sigmoid if 1 label, softmax if more.

    >>> classify_activation(1, None), classify_activation(3, None), classify_activation(3, "regression")
    ('sigmoid', 'softmax', 'identity')
    """
    if problem_type == "regression":
        return "identity"
    if problem_type == "multi_label_classification":
        return "sigmoid"
    return "sigmoid" if num_labels < 2 else "softmax"


def apply_activation(logits: torch.Tensor, name: ActivationName) -> torch.Tensor:
    """Apply `name` over the last dimension of float logits (..., c); returns float32.

    >>> apply_activation(torch.tensor([0.0]), "sigmoid").tolist()
    [0.5]
    """
    logits = logits.float()
    if name == "softmax":
        return torch.softmax(logits, dim=-1)
    if name == "sigmoid":
        return torch.sigmoid(logits)
    if name == "tanh":
        return torch.tanh(logits)
    if name == "relu":
        return torch.relu(logits)
    return logits
