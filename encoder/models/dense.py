"""Dense (and raw per-token) embedding models: BERT / XLM-R / ModernBERT encoders and decoder embedders."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from encoder.batch import Batch
from encoder.models.base import ModelAdapter, load_st_dense_heads
from encoder.types import PoolingParams, Task
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
    """`embed`: pooled (CLS/MEAN/LAST) -> ST Dense heads -> Matryoshka -> L2; `token_embed`: every kept token."""

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
        return projected if projected is not None and task == "embed" else self.info.hidden_size

    def pool(
        self, task: Task, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]
    ) -> list[torch.Tensor]:
        if task == "embed":
            pooled = self.module.project(pool(hidden, batch.attention_mask, self.info.pooling_type))
            return self._finish(list(pooled.float().cpu()), params)
        if task == "token_embed":
            return self._finish([t.cpu() for t in pool_all(hidden, batch.keep_mask)], params)
        return super().pool(task, hidden, batch, params)

    def _finish(self, rows: list[torch.Tensor], params: Sequence[PoolingParams]) -> list[torch.Tensor]:
        out = []
        for row, p in zip(rows, params, strict=True):
            normalize = self.info.normalize if p.use_activation is None else p.use_activation
            out.append(truncate_and_normalize(row, p.dimensions, normalize))
        return out
