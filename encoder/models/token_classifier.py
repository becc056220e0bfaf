"""Token classification (NER-style `*ForTokenClassification`): one label distribution per token.

vLLM serves these through `token_classify` (`/pooling`, `LLM.encode(pooling_task="token_classify")`):
per-token softmax (sigmoid for one label or multi-label, identity for regression), raw logits with
`use_activation=False`. Loading them as sequence classifiers would invent a pooler: they get their own adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from encoder.batch import Batch
from encoder.errors import UnsupportedTaskError
from encoder.models.base import TASK_API_NAMES, ModelAdapter
from encoder.types import PoolingParams, Task
from poolers.activation import apply_activation, classify_activation
from poolers.pooling import pool_all

__all__ = ["TOKEN_CLASSIFICATION_PATTERN", "TokenClassifier"]

TOKEN_CLASSIFICATION_PATTERN = r"ForTokenClassification$"


class TokenClassifier(ModelAdapter):
    """`token_classify` only: float32 (n_i, num_labels) per input, one row per kept token."""

    def load_module(self) -> torch.nn.Module:
        from transformers import AutoModelForTokenClassification

        config = self.info.config
        self.num_labels = int(config.num_labels)
        self.activation = classify_activation(self.num_labels, getattr(config, "problem_type", None))
        return self.load_backbone(AutoModelForTokenClassification)

    @property
    def default_task(self) -> Task:
        return "token_classify"

    def check_task(self, task: Task) -> None:
        if task != "token_classify":
            raise UnsupportedTaskError(f"The model does not support {TASK_API_NAMES[task]}")

    def output_size(self, task: Task) -> int:
        return self.num_labels

    def forward(self, batch: Batch) -> torch.Tensor:
        """Per-token logits (b, L, num_labels)."""
        kwargs: dict[str, Any] = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if batch.token_type_ids is not None:
            kwargs["token_type_ids"] = batch.token_type_ids
        return self.module(**kwargs).logits

    def pool(
        self, task: Task, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]
    ) -> list[torch.Tensor]:
        rows = pool_all(hidden, batch.keep_mask)
        return [
            r.cpu() if p.use_activation is False else apply_activation(r.cpu(), self.activation)
            for r, p in zip(rows, params, strict=True)
        ]
