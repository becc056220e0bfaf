"""What the engine hands back: typed, numpy at the boundary, one row per input and never a dropped row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch

from encoder.types import M3Output, PoolingParams, Task, TokenOptions

__all__ = ["EncodeCall", "EncodeResult", "SparseWeights"]

SparseWeights = dict[int, float]
"""One sparse vector: vocabulary token id -> weight."""


@dataclass(frozen=True, slots=True)
class EncodeCall:
    """One homogeneous piece of work: these inputs, this task and options. Several calls can run as one job."""

    prompts: Sequence[object]  # EncoderInput values (text, token ids, TextPair, MultimodalInput)
    params: PoolingParams  # task and output options (resolved by the engine)
    options: TokenOptions = field(default_factory=TokenOptions)  # truncation, special tokens, prompt name


def _f32(t: torch.Tensor) -> npt.NDArray[np.float32]:
    return np.ascontiguousarray(t.detach().float().cpu().numpy())


@dataclass(frozen=True, slots=True)
class EncodeResult:
    """The outputs of one call, in input order.

    `outputs` are the raw pooled tensors of the task (vLLM's `/pooling` data: float32, CPU); `m3` holds
    the combined results of tasks ``embed&token_embed&token_classify`` (BGE-M3) and ``embed&token_embed`` (a dense
    model's pooled and token vectors from one pass), and `outputs` is empty then.
    The typed accessors return numpy for the layers above.
    """

    task: Task  # the task that produced these rows
    outputs: list[torch.Tensor]  # one float32 tensor per input (empty for the M3 task)
    prompt_token_ids: list[list[int]]  # the token ids the model read, per input
    m3: list[M3Output] = field(default_factory=list)  # one per input for the M3 task, else empty

    def __post_init__(self) -> None:
        rows = len(self.m3) if self.m3 else len(self.outputs)
        if rows != len(self.prompt_token_ids):
            raise RuntimeError(f"encoder produced {rows} rows for {len(self.prompt_token_ids)} inputs")

    @property
    def prompt_tokens(self) -> list[int]:
        """Token count per prompt (for usage blocks)."""
        return [len(ids) for ids in self.prompt_token_ids]

    def dense(self) -> npt.NDArray[np.float32]:
        """Task ``embed``: float32 (n, d)."""
        if self.m3:
            return np.stack([m.dense for m in self.m3]).astype(np.float32, copy=False)
        return np.stack([_f32(t) for t in self.outputs]) if self.outputs else np.zeros((0, 0), np.float32)

    def multivectors(self) -> list[npt.NDArray[np.float32]]:
        """Task ``token_embed``: a list of float32 (m_i, d)."""
        if self.m3:
            return [m.colbert for m in self.m3]
        return [_f32(t) for t in self.outputs]

    def sparse(self) -> list[SparseWeights]:
        """BGE-M3's lexical weights per input (M3 task; empty dicts for ``embed&token_embed``)."""
        return [m.sparse for m in self.m3]

    def scores(self) -> npt.NDArray[np.float32]:
        """Task ``score`` (cross-encoders): float32 (n,)."""
        return np.array([float(t.reshape(-1)[0]) for t in self.outputs], dtype=np.float32)

    def rows(self) -> list[npt.NDArray[np.float32]]:
        """Any task, one float32 array per input (class probabilities (C,), per-token scores (m,) or (m, C))."""
        return [_f32(t) for t in self.outputs]
