"""An adapter's forward pass under `torch.compile(dynamic=True)`: compiled on first use, eager when that fails.

Compilation happens inside the first call (dynamo traces lazily), so a failure shows up there, or at a later
recompile for a new shape. The rule that tells a compiler failure from a bad input: when the compiled call
raises and the eager call on the same batch succeeds, compilation is at fault; the wrapper logs that once and
runs eager from then on. When eager raises too, its error propagates and the compiled path stays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

import torch

__all__ = ["CompiledForward", "bucket_width", "compile_supported"]

log = logging.getLogger(__name__)

In = TypeVar("In")
_BUCKET = 64  # CUDA + compile: batch widths are padded up to a multiple of this, bounding recompiles


def compile_supported() -> bool:
    """Whether the installed torch offers `torch.compile` (it is absent before 2.0)."""
    return callable(getattr(torch, "compile", None))


def bucket_width(longest: int, cap: int, bucket: int = _BUCKET) -> int:
    """`longest` rounded up to a multiple of `bucket`, but not past `cap` (and never below `longest`).

    >>> bucket_width(70, 512), bucket_width(500, 510), bucket_width(600, 512), bucket_width(64, 512)
    (128, 510, 600, 64)
    """
    return max(longest, min(-(-longest // bucket) * bucket, cap))


class CompiledForward(Generic[In]):
    """Call `forward(batch)` compiled with `torch.compile(dynamic=True)`; fall back to eager for good on failure.

    `forward` maps a collated batch to hidden states (b, L, h); outputs are the eager ones up to kernel
    rounding. Not thread-safe: the engine calls it under its run lock.
    """

    def __init__(self, forward: Callable[[In], torch.Tensor], name: str) -> None:
        self._eager = forward
        self._name = name
        self._compiled: Callable[[In], torch.Tensor] | None = None
        self.failed: str | None = None  # why compilation was abandoned (None while it works or is untried)

    @property
    def active(self) -> bool:
        """Whether calls still go through the compiled function."""
        return self.failed is None

    def __call__(self, batch: In) -> torch.Tensor:
        if self.failed is not None:
            return self._eager(batch)
        try:
            return self._compile()(batch)
        except Exception as exc:
            hidden = self._eager(batch)  # eager raises too: the input's fault; keep compiling
            self._give_up(exc)
            return hidden

    def _compile(self) -> Callable[[In], torch.Tensor]:
        if self._compiled is None:
            if not compile_supported():
                raise RuntimeError(f"torch {torch.__version__} has no torch.compile")
            self._compiled = torch.compile(self._eager, dynamic=True)
        return self._compiled

    def _give_up(self, exc: Exception) -> None:
        self.failed = f"{type(exc).__name__}: {exc}"
        self._compiled = None
        log.warning("torch.compile failed for model %s; running it eager from now on (%s)", self._name, self.failed)
