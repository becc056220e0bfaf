"""The null model (benchmarks and tests only): a real tokenizer, no weights, zero hidden states at once.

Selected with `retrieval serve --model null` (the bundled MiniLM's tokenizer and config with the architecture
overridden to `NullModel`). It isolates the cost of everything around the model: HTTP, validation,
tokenisation, batching and transport. Its embeddings are zero vectors of the model's width.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from encoder.batch import Batch
from encoder.models.dense import DenseEmbedder, _Stack
from encoder.types import Task

__all__ = ["NULL_ARCHITECTURE", "NullEmbedder"]

NULL_ARCHITECTURE = "NullModel"  # the `architectures[0]` value (via hf_overrides) that selects this adapter


class NullEmbedder(DenseEmbedder):
    """`embed` / `token_embed` answering zeros: hidden states float32 (b, L, hidden_size), no forward pass."""

    architectures = (NULL_ARCHITECTURE,)
    tasks: ClassVar[frozenset[Task] | None] = frozenset({"embed", "token_embed"})

    def load_module(self) -> torch.nn.Module:
        return _Stack(torch.nn.Identity(), [])  # no weights are read

    def forward(self, batch: Batch) -> torch.Tensor:
        rows, width = batch.input_ids.shape
        return torch.zeros(rows, width, self.info.hidden_size, device=batch.input_ids.device)

    def output_size(self, task: Task) -> int:
        return self.info.hidden_size
