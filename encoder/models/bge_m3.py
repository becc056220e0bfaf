"""BGE-M3 (`BgeM3EmbeddingModel` via hf_overrides): dense, sparse and ColBERT outputs of one XLM-R backbone.

Files: the XLM-R folder plus FlagEmbedding's ``colbert_linear.pt`` (``Linear(h, h')``) and
``sparse_linear.pt`` (``Linear(h, 1)``), plain state dicts read with ``torch.load(weights_only=True)``.

Tasks (vLLM's semantics):

* ``embed`` -- CLS vector, Matryoshka-truncated, L2-normalised;
* ``token_embed`` -- ``colbert_linear`` of every token but the first (BOS), L2-normalised: (n - 1, h');
* ``token_classify`` -- ``relu(sparse_linear)`` per position with BOS and EOS removed: (n - 2,);
* ``embed&token_embed&token_classify`` (this project's extra value) -- all three from one forward pass as
  an :class:`~encoder.types.M3Output`, sparse as ``{token_id: max weight}`` without special ids or w <= 0.
  ``dimensions`` applies to the dense vector only. Ask the engine for task :data:`~encoder.types.M3_TASK`
  and read `EncodeResult.m3`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import msgspec
import torch

from encoder.batch import Batch
from encoder.errors import ModelLoadError
from encoder.models.base import ModelAdapter
from encoder.resolve import ModelInfo
from encoder.types import M3_TASK, M3Output, PoolingParams, Representation, Task
from poolers.matryoshka import truncate_and_normalize
from poolers.pooling import pool as sequence_pool
from poolers.sparse import lexical_weights, token_weights

__all__ = ["M3_TASK", "BgeM3Adapter", "M3Module", "load_pt_linear"]


def load_pt_linear(path: Path, hidden: int, out_features: int | None = None) -> torch.nn.Linear:
    """A `Linear(hidden, out)` from a `{weight [out, hidden], bias [out]}` .pt state dict (weights_only).

    A missing file, a file that needs unpickling of objects, or wrong keys/shapes is a `ModelLoadError`
    naming the file.
    """
    if not path.is_file():
        raise ModelLoadError(f"BGE-M3 head file {path} is missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, EOFError, RuntimeError from a corrupt or unsafe file
        raise ModelLoadError(f"cannot read {path} with torch.load(weights_only=True): {exc}") from exc
    weight = state.get("weight") if isinstance(state, dict) else None
    bias = state.get("bias") if isinstance(state, dict) else None
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or weight.shape[1] != hidden:
        raise ModelLoadError(f"{path} must hold a state dict with 'weight' [out, {hidden}]")
    if out_features is not None and weight.shape[0] != out_features:
        raise ModelLoadError(f"{path}: 'weight' has {weight.shape[0]} outputs, expected {out_features}")
    if bias is not None and (not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (weight.shape[0],)):
        raise ModelLoadError(f"{path}: 'bias' must be a [{weight.shape[0]}] tensor")
    linear = torch.nn.Linear(hidden, weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)
    return linear


class M3Module(torch.nn.Module):
    """XLM-R backbone + the two FlagEmbedding heads; the adapter calls the parts."""

    def __init__(self, backbone: torch.nn.Module, colbert: torch.nn.Linear, sparse: torch.nn.Linear) -> None:
        super().__init__()
        self.backbone = backbone
        self.colbert = colbert
        self.sparse = sparse


class BgeM3Adapter(ModelAdapter):
    """XLM-R backbone + colbert and sparse heads; see the module docstring for the tasks."""

    architectures: ClassVar[tuple[str, ...]] = ("BgeM3EmbeddingModel",)
    tasks: ClassVar[frozenset[Task] | None] = frozenset({"embed", "token_embed", "token_classify", M3_TASK})

    @property
    def representations(self) -> frozenset[Representation]:
        return frozenset({"dense", "multivector", "sparse"})

    def __init__(self, info: ModelInfo, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(info, device, dtype)
        tok = self.tokenizer.hf
        self.bos_id: int | None = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        self.eos_id: int | None = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
        specials = (self.bos_id, self.eos_id, tok.pad_token_id, tok.unk_token_id)
        self.special_ids = frozenset(int(i) for i in specials if i is not None)

    def _head_path(self, name: str) -> Path:
        for folder in (self.info.root, self.info.weights_dir):
            if (folder / name).is_file():
                return folder / name
        return self.info.root / name

    def load_module(self) -> torch.nn.Module:
        hidden = self.info.hidden_size
        colbert = load_pt_linear(self._head_path("colbert_linear.pt"), hidden)
        sparse = load_pt_linear(self._head_path("sparse_linear.pt"), hidden, out_features=1)
        return M3Module(self.load_backbone(), colbert, sparse)

    @property
    def parts(self) -> M3Module:
        return cast(M3Module, self.module)

    def output_size(self, task: Task) -> int:
        return int(self.parts.colbert.out_features) if task == "token_embed" else self.info.hidden_size

    def check_params(self, params: PoolingParams) -> None:
        """The combined task validates `dimensions` as `embed` does (it applies to the dense vector)."""
        super().check_params(msgspec.structs.replace(params, task="embed") if params.task == M3_TASK else params)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.parts.backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state

    # -- pooling -------------------------------------------------------------------------------------
    def pool(self, task: Task, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]) -> list[Any]:
        """float32 CPU tensors per row; :class:`M3Output` per row for the combined task."""
        if task == "embed":
            return self._dense(hidden, batch, params)
        if task == "token_embed":
            return self._colbert(hidden, batch, params)
        if task == "token_classify":
            return self._token_weights(hidden, batch, params)
        if task == M3_TASK:
            plain = [msgspec.structs.replace(p, dimensions=None) for p in params]
            dense, colbert = self._dense(hidden, batch, params), self._colbert(hidden, batch, plain)
            sparse = self._sparse(hidden, batch)
            return [
                M3Output(d.float().numpy(), c.float().numpy(), s)
                for d, c, s in zip(dense, colbert, sparse, strict=True)
            ]
        return super().pool(task, hidden, batch, params)

    def _dense(self, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]) -> list[torch.Tensor]:
        cls = sequence_pool(hidden, batch.attention_mask, "CLS").cpu()
        return [
            truncate_and_normalize(row, p.dimensions, p.use_activation is not False)
            for row, p in zip(cls, params, strict=True)
        ]

    def _colbert(self, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]) -> list[torch.Tensor]:
        projected = self.parts.colbert(hidden.to(self.parts.colbert.weight.dtype)).float()
        keep = batch.keep_mask.bool().clone()
        if self.bos_id is not None:
            keep[:, 0] &= batch.input_ids[:, 0] != self.bos_id
        out = []
        for row, p in enumerate(params):
            out.append(
                truncate_and_normalize(projected[row][keep[row]], p.dimensions, p.use_activation is not False).cpu()
            )
        return out

    def _spans(self, batch: Batch) -> list[tuple[int, int]]:
        """Per row, the [start, end) positions left after removing a leading BOS and a trailing EOS."""
        lengths = batch.attention_mask.sum(dim=1).tolist()
        ids = batch.input_ids.tolist()
        spans = []
        for row, n in zip(ids, lengths, strict=True):
            start = 1 if n and row[0] == self.bos_id else 0
            end = n - 1 if n > start and row[n - 1] == self.eos_id else n
            spans.append((start, end))
        return spans

    def _token_weights(self, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]) -> list[torch.Tensor]:
        out = []
        for row, (start, end) in enumerate(self._spans(batch)):
            weights = token_weights(hidden[row, start:end], self.parts.sparse, params[row].use_activation is not False)
            out.append(weights.cpu())
        return out

    def _sparse(self, hidden: torch.Tensor, batch: Batch) -> list[dict[int, float]]:
        weights = token_weights(hidden, self.parts.sparse).cpu()
        lengths = batch.attention_mask.sum(dim=1).tolist()
        ids = batch.input_ids.cpu()
        return [lexical_weights(ids[r, :n], weights[r, :n], self.special_ids) for r, n in enumerate(lengths)]
