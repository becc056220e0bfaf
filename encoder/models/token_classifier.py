"""Adapters that serve only `token_classify`: one row of head outputs per kept token (ALL pooling).

`PerTokenAdapter` holds what they share (task rules, output size, per-token activation). `TokenClassifier`
serves NER-style `*ForTokenClassification` checkpoints: per-token softmax (sigmoid for one label or
multi-label, identity for regression), raw logits with `use_activation=False`. Loading them as sequence
classifiers would invent a pooler, so they get their own adapter. Reward models build on the same base.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from encoder.batch import Batch
from encoder.errors import UnsupportedTaskError
from encoder.models.base import TASK_API_NAMES, ModelAdapter
from encoder.types import ModelKind, PoolingParams, Task
from poolers.activation import ActivationName, apply_activation, classify_activation
from poolers.pooling import pool_all

__all__ = ["TOKEN_CLASSIFICATION_PATTERN", "PerTokenAdapter", "TokenClassifier"]

TOKEN_CLASSIFICATION_PATTERN = r"ForTokenClassification$"


class PerTokenAdapter(ModelAdapter):
    """`token_classify` only. Subclasses set `num_outputs` and `activation` in `load_module` and return
    per-token head outputs (b, L, C) from `forward`; `pool` gives float32 (n_i, C) per input."""

    tasks: ClassVar[frozenset[Task] | None] = frozenset({"token_classify"})
    activate_by_default: ClassVar[bool] = True  # apply `activation` when a request leaves use_activation unset
    num_outputs: int
    activation: ActivationName

    @property
    def kind(self) -> ModelKind:
        return "token-classifier"

    def check_task(self, task: Task) -> None:
        if task != "token_classify":
            raise UnsupportedTaskError(f"The model does not support {TASK_API_NAMES[task]}")

    def output_size(self, task: Task) -> int:
        return self.num_outputs

    def pool(
        self, task: Task, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]
    ) -> list[torch.Tensor]:
        out = []
        for row, p in zip(pool_all(hidden, batch.keep_mask), params, strict=True):
            activate = self.activate_by_default if p.use_activation is None else p.use_activation
            out.append(apply_activation(row.cpu(), self.activation) if activate else row.cpu())
        return out


class TokenClassifier(PerTokenAdapter):
    """`*ForTokenClassification` through transformers' own head."""

    def load_module(self) -> torch.nn.Module:
        from transformers import AutoModelForTokenClassification

        config = self.info.config
        self.num_outputs = int(config.num_labels)
        self.activation = classify_activation(self.num_outputs, getattr(config, "problem_type", None))
        return self.load_backbone(AutoModelForTokenClassification)

    def forward(self, batch: Batch) -> torch.Tensor:
        """Per-token logits (b, L, num_labels)."""
        kwargs: dict[str, Any] = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if batch.token_type_ids is not None:
            kwargs["token_type_ids"] = batch.token_type_ids
        logits: torch.Tensor = self.module(**kwargs).logits
        return logits
