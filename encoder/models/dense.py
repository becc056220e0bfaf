"""Dense (and raw per-token) embedding models: BERT / XLM-R / ModernBERT encoders and decoder embedders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import torch

from encoder.batch import Batch
from encoder.errors import UnsupportedTaskError
from encoder.models.base import ModelAdapter, load_st_dense_heads
from encoder.types import DENSE_TOKENS_TASK, M3Output, PoolingParams, Representation, Task
from poolers.dense import DenseHead
from poolers.matryoshka import truncate_and_normalize
from poolers.pooling import pool, pool_all

__all__ = ["DenseEmbedder"]


class _Stack(torch.nn.Module):
    """The backbone plus the sentence-transformers Dense heads applied after pooling."""

    def __init__(self, backbone: torch.nn.Module, heads: list[DenseHead]) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = torch.nn.ModuleList(heads)
        self.out_features: int | None = heads[-1].linear.out_features if heads else None

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        for head in self.heads:
            pooled = head(pooled)
        return pooled


class DenseEmbedder(ModelAdapter):
    """`embed`: pooled (CLS/MEAN/LAST) -> ST Dense heads -> Matryoshka -> L2; `token_embed`: every kept token;
    `embed&token_embed`: both from one forward pass, the token vectors always L2-normalised (late interaction).

    The token vectors are sentence-transformers' ``encode(output_value="token_embeddings")``: the backbone's last
    hidden state at every attended position -- padding dropped, ``[CLS]`` and ``[SEP]`` kept (ST 6.3 keeps
    them too), before the Pooling/Dense/Normalize modules.
    """

    module: _Stack

    def load_module(self) -> torch.nn.Module:
        return _Stack(self.load_backbone(), load_st_dense_heads(self.info.root, self.info.st.dense_paths))

    def forward(self, batch: Batch) -> torch.Tensor:
        kwargs: dict[str, torch.Tensor] = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if batch.token_type_ids is not None:
            kwargs["token_type_ids"] = batch.token_type_ids
        return self.module.backbone(**kwargs).last_hidden_state

    def output_size(self, task: Task) -> int:
        projected = self.module.out_features
        return projected if projected is not None and task in ("embed", DENSE_TOKENS_TASK) else self.info.hidden_size

    @property
    def representations(self) -> frozenset[Representation]:
        """Dense vectors, and -- when the model also gives token vectors -- a multi-vector representation."""
        if not self.supports("embed"):
            return frozenset()
        return frozenset({"dense", "multivector"}) if self.supports("token_embed") else frozenset({"dense"})

    def check_task(self, task: Task) -> None:
        if task == DENSE_TOKENS_TASK:
            for part in ("embed", "token_embed"):
                if part not in self.info.tasks:
                    raise UnsupportedTaskError("The model does not support Dense+Token Embeddings API")
            return
        super().check_task(task)

    def check_params(self, params: PoolingParams) -> None:
        """The combined task validates `dimensions` as `embed` does (it applies to the pooled vector only)."""
        joint = params.task == DENSE_TOKENS_TASK
        super().check_params(msgspec.structs.replace(params, task="embed") if joint else params)

    def pool(self, task: Task, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]) -> list[Any]:
        if task == "embed":
            pooled = self.module.project(pool(hidden, batch.attention_mask, self.info.pooling_type))
            return self._finish(list(pooled.float().cpu()), params)
        if task == "token_embed":
            return self._finish([t.cpu() for t in pool_all(hidden, batch.keep_mask)], params)
        if task == DENSE_TOKENS_TASK:
            return self._joint(hidden, batch, params)
        return super().pool(task, hidden, batch, params)

    def _joint(self, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]) -> list[M3Output]:
        """Pooled vector (as `embed`) and L2-normalised token vectors (as `token_embed` with use_activation) of
        each row, from the same hidden states (B, T, h)."""
        dense = self.pool("embed", hidden, batch, params)
        plain = [PoolingParams(task="token_embed", use_activation=True) for _ in params]
        tokens = self.pool("token_embed", hidden, batch, plain)
        return [M3Output(d.float().numpy(), t.float().numpy(), {}) for d, t in zip(dense, tokens, strict=True)]

    def _finish(self, rows: list[torch.Tensor], params: Sequence[PoolingParams]) -> list[torch.Tensor]:
        out = []
        for row, p in zip(rows, params, strict=True):
            normalize = self.info.normalize if p.use_activation is None else p.use_activation
            out.append(truncate_and_normalize(row, p.dimensions, normalize))
        return out
