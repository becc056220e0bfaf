"""jina-embeddings-v3 and jina-colbert-v2 on our own flash XLM-RoBERTa (no remote code is executed).

* :class:`JinaEmbedder` -- jina-embeddings-v3: MEAN pooling + L2 from the sentence-transformers files,
  Matryoshka ``dimensions`` from the config, the ``text-matching`` LoRA merged by default (vLLM's behaviour)
  and, beyond vLLM, any other task adapter per request (``PoolingParams.adapter``) with its task instruction
  prepended to text inputs. Rows of one batch are grouped by adapter and each group runs with its weights.
* :class:`JinaFlashColBERT` -- jina-colbert-v2: the same backbone (``roberta.*``, plain weights) under
  ``linear.weight``, with the Jina ColBERT markers, query expansion and Matryoshka ColBERT dimensions.

Both are chosen by the registry when the config is the rotary (flash) XLM-R, as vLLM routes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import msgspec
import torch
from torch import nn

from encoder.batch import Batch
from encoder.errors import InvalidInputError, ModelLoadError
from encoder.models.base import ModelAdapter
from encoder.models.colbert import ColBERTModule, JinaColBERT
from encoder.models.jina_lora import TaskLoRA
from encoder.models.jina_xlmr_backbone import FlashSettings, JinaXLMRBackbone, split_flash_state
from encoder.models.weights import read_safetensors_dir
from encoder.resolve import ModelInfo
from encoder.tokenizer import Prompt, load_hf_tokenizer
from encoder.types import PoolingParams, Task, TokenizedInput, TruncationSide
from poolers.matryoshka import MatryoshkaError, truncate_and_normalize, validate_dimensions
from poolers.pooling import pool, pool_all

__all__ = ["JINA_COLBERT_DIMS", "JinaEmbedder", "JinaFlashColBERT", "JinaModule", "load_flash"]

JINA_COLBERT_DIMS = (128, 96, 64)  # jina-colbert-v2's published Matryoshka sizes (a 128-wide projection)
_COLBERT_HEADS = ("linear.", "colbert_linear.")


def load_flash(
    info: ModelInfo, head_prefixes: tuple[str, ...] = ()
) -> tuple[JinaXLMRBackbone, TaskLoRA | None, dict[str, torch.Tensor], Path]:
    """Build the backbone from `info.config` and load the checkpoint's safetensors into it.

    Returns (backbone with the default adapter merged, the task LoRA or None, head tensors, weights file).
    """
    state, path = read_safetensors_dir(info.weights_dir)
    plain, factors, heads = split_flash_state(state, head_prefixes)
    lora = _task_lora(info.config, factors, plain, path) if factors else None
    if lora is not None:
        lora.merge_default_into(plain)
    backbone = JinaXLMRBackbone(FlashSettings.from_config(info.config))
    try:
        result: Any = backbone.load_state_dict(plain, strict=False)
    except RuntimeError as exc:
        raise ModelLoadError(f"{path} does not fit the config of {info.weights_dir}: {exc}") from exc
    problems = [*result.missing_keys, *result.unexpected_keys]
    if problems:
        raise ModelLoadError(
            f"{path} does not match Jina's flash XLM-RoBERTa layout: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    return backbone, lora, heads, path


def _task_lora(config: Any, factors: Any, plain: dict[str, torch.Tensor], path: Path) -> TaskLoRA:
    names = list(getattr(config, "lora_adaptations", None) or [])
    if not names:
        raise ModelLoadError(f"{path} holds LoRA tensors but its config lists no lora_adaptations")
    scaling = float(getattr(config, "lora_alpha", 1)) / float(getattr(config, "lora_rank", 4))
    instructions = getattr(config, "task_instructions", None) or {}
    return TaskLoRA(names, instructions, scaling, factors, plain)


def _flash_tokenizer(adapter: ModelAdapter) -> Any:
    """The tokenizer, given our JSON-read config so AutoTokenizer never imports the config's remote module."""
    return load_hf_tokenizer(adapter.tokenizer_dir(), adapter.info.spec.trust_remote_code, adapter.info.config)


class JinaModule(nn.Module):
    """The backbone plus (jina-embeddings-v3) its task LoRA."""

    def __init__(self, backbone: JinaXLMRBackbone, lora: TaskLoRA | None) -> None:
        super().__init__()
        self.backbone = backbone
        self.lora = lora

    def run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, adapter: int | None) -> torch.Tensor:
        """Hidden states (b, L, H) with `adapter`'s weights (None = the default adapter)."""
        if self.lora is None:
            return cast(torch.Tensor, self.backbone(input_ids, attention_mask))
        index = self.lora.default if adapter is None else adapter
        emb = self.backbone.embeddings
        tables = {
            "embeddings.word_embeddings.weight": emb.word_embeddings,
            "embeddings.token_type_embeddings.weight": emb.token_type_embeddings,
        }
        embedded = self.lora.embed(tables, input_ids, index)
        return cast(torch.Tensor, self.backbone(input_ids, attention_mask, self.lora.linear_weights(index), embedded))

    def run_grouped(self, batch: Batch) -> torch.Tensor:
        """Run each group of rows sharing an adapter (`item.extras["adapter"]`) with that adapter's weights."""
        groups: dict[int | None, list[int]] = {}
        for row, item in enumerate(batch.items):
            groups.setdefault(item.extras.get("adapter"), []).append(row)
        if len(groups) == 1:
            return self.run(batch.input_ids, batch.attention_mask, next(iter(groups)))
        out: torch.Tensor | None = None
        for adapter, rows in groups.items():
            index = torch.tensor(rows, device=batch.input_ids.device)
            part = self.run(batch.input_ids[index], batch.attention_mask[index], adapter)
            if out is None:
                out = part.new_empty((len(batch.items), *part.shape[1:]))
            out[index] = part
        return cast(torch.Tensor, out)


class JinaEmbedder(ModelAdapter):
    """jina-embeddings-v3: `embed` (pooled, Matryoshka, L2) and `token_embed`, per-request task adapters."""

    def load_tokenizer(self) -> Any:
        return _flash_tokenizer(self)

    def load_module(self) -> torch.nn.Module:
        backbone, lora, _, _ = load_flash(self.info)
        return JinaModule(backbone, lora)

    @property
    def parts(self) -> JinaModule:
        return cast(JinaModule, self.module)

    @property
    def adapters(self) -> tuple[str, ...]:
        """The model's LoRA adapter names (empty when it has none)."""
        return () if self.parts.lora is None else self.parts.lora.names

    def adapter_index(self, name: str) -> int:
        """Index of adapter `name`; an unknown name (or a model without adapters) is a 400 listing them."""
        if name not in self.adapters:
            known = ", ".join(self.adapters) or "none"
            raise InvalidInputError(
                f'Model "{self.info.name}" has no adapter {name!r}; its adapters are: {known}', param="adapter"
            )
        return self.adapters.index(name)

    def check_params(self, params: PoolingParams) -> None:
        if params.adapter is not None:
            self.adapter_index(params.adapter)
        super().check_params(msgspec.structs.replace(params, adapter=None))

    def tokenize(
        self,
        prompts: Sequence[Prompt],
        params: PoolingParams,
        *,
        truncate: int | None = None,
        side: TruncationSide | None = None,
        add_special_tokens: bool = True,
    ) -> list[TokenizedInput]:
        """Texts get the adapter's task instruction in front (token-id inputs are taken as already prompted)."""
        index = None if params.adapter is None else self.adapter_index(params.adapter)
        if index is not None and self.parts.lora is not None:
            instruction = self.parts.lora.instructions[self.adapters[index]]
            prompts = [instruction + p if isinstance(p, str) else p for p in prompts]
        items = super().tokenize(prompts, params, truncate=truncate, side=side, add_special_tokens=add_special_tokens)
        if index is not None:
            for item in items:
                item.extras["adapter"] = index
        return items

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.parts.run_grouped(batch)

    def pool(
        self, task: Task, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]
    ) -> list[torch.Tensor]:
        if task == "embed":
            rows = list(pool(hidden, batch.attention_mask, self.info.pooling_type).float().cpu())
        elif task == "token_embed":
            rows = [t.cpu() for t in pool_all(hidden, batch.keep_mask)]
        else:
            return super().pool(task, hidden, batch, params)
        out = []
        for row, p in zip(rows, params, strict=True):
            normalize = self.info.normalize if p.use_activation is None else p.use_activation
            out.append(truncate_and_normalize(row, p.dimensions, normalize))
        return out


class JinaFlashColBERT(JinaColBERT):
    """jina-colbert-v2 for real: the rotary backbone under ``roberta.*`` + ``linear.weight``."""

    architectures: ClassVar[tuple[str, ...]] = ()  # chosen by config (registry), not by name

    def load_tokenizer(self) -> Any:
        return _flash_tokenizer(self)

    def load_module(self) -> torch.nn.Module:
        backbone, lora, heads, path = load_flash(self.info, _COLBERT_HEADS)
        return ColBERTModule(JinaModule(backbone, lora), self._load_head(heads, path))

    def forward(self, batch: Batch) -> torch.Tensor:
        return cast(JinaModule, self.parts.backbone).run(batch.input_ids, batch.attention_mask, None)

    def check_params(self, params: PoolingParams) -> None:
        """The config's Matryoshka sizes when it declares some, else the published 128 / 96 / 64."""
        published = self.output_size("token_embed") == JINA_COLBERT_DIMS[0]
        if params.dimensions is None or params.adapter is not None or self.info.is_matryoshka or not published:
            super().check_params(params)
            return
        try:
            validate_dimensions(
                params.dimensions,
                model_name=self.info.name,
                is_matryoshka=True,
                matryoshka_dimensions=JINA_COLBERT_DIMS,
                hidden_size=JINA_COLBERT_DIMS[0],
            )
        except MatryoshkaError as exc:
            raise InvalidInputError(str(exc), param="dimensions") from exc
