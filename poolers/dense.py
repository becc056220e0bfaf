"""The sentence-transformers `Dense` head: y = activation(x W^T + b)."""

from __future__ import annotations

import torch

__all__ = ["DenseHead", "activation_module"]

_ACTIVATIONS = {
    "Identity": torch.nn.Identity,
    "Tanh": torch.nn.Tanh,
    "ReLU": torch.nn.ReLU,
    "GELU": torch.nn.GELU,
    "Sigmoid": torch.nn.Sigmoid,
}


def activation_module(name: str | None) -> torch.nn.Module:
    """Map a sentence-transformers activation path (e.g. 'torch.nn.modules.activation.Tanh') to a module."""
    short = (name or "Identity").rsplit(".", 1)[-1]
    if short not in _ACTIVATIONS:
        raise ValueError(f"unsupported Dense activation {name!r}; expected one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[short]()


class DenseHead(torch.nn.Module):
    """A linear projection plus activation. weight: (out, in); bias: (out,) or None."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, activation: str | None = None) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            if bias is not None:
                self.linear.bias.copy_(bias)
        self.activation = activation_module(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., in) -> (..., out), computed in the head's dtype."""
        return self.activation(self.linear(x.to(self.linear.weight.dtype)))
