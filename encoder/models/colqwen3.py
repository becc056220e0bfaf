"""ColQwen3-family late-interaction models on the Qwen3-VL backbone, in the four published layouts.

Layouts and prompts are decided in `encoder.colqwen3_config`. ``token_embed`` returns one vector per position
(prompt, image patches after merging, text), projected when the layout has a projection, Matryoshka-truncated
on request and L2-normalised. ``embedding_mode`` is accepted (the scoring path sets it for every
late-interaction model) and changes nothing here: the family's prompts are chosen with `prompt_name`
(``"query"`` / ``"document"``, see `ColQwen3Adapter.apply_prompt`).

An item with images is rendered part by part (text as is, each image as ``IMAGE_BLOCK``), tokenised, and each
``<|image_pad|>`` grows to the image's merged patch count; its ``pixel_values`` and ``image_grid_thw`` travel in
`TokenizedInput.extras` into the batch. Such an item is never truncated (cutting would orphan image patches):
over `max_model_len` it is refused.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any, ClassVar, cast

import torch

from encoder.batch import Batch
from encoder.colqwen3_config import (
    IMAGE_BLOCK,
    NEMOTRON_ARCHITECTURE,
    ColQwen3Layout,
    config_width,
    detect_layout,
    family_prompts,
    layout_rules,
    visual_token_budget,
)
from encoder.errors import InputTooLongError, InvalidInputError, ModelLoadError
from encoder.inputs import ImagePart, MultimodalInput, Prompt, TextPart
from encoder.models.base import ModelAdapter
from encoder.models.weights import load_prefixed_backbone
from encoder.prompts import PromptRole
from encoder.resolve import ModelInfo
from encoder.types import ModelKind, PoolingParams, Representation, Task, TokenizedInput, TruncationSide
from poolers.colbert import token_vectors
from poolers.dense import DenseHead

__all__ = ["ColQwen3Adapter", "ColQwen3Module"]

_ALL_PREFIXES = ("vlm.model.", "vlm.", "model.")
_HEADS = ("embedding_proj_layer.", "custom_text_proj.", "vlm.lm_head.", "lm_head.")
_ROLE_PROMPTS: dict[PromptRole, str] = {"query": "query", "document": "document"}


class ColQwen3Module(torch.nn.Module):
    """Qwen3-VL backbone + optional projection; the adapter calls the parts."""

    def __init__(self, backbone: torch.nn.Module, head: torch.nn.Module | None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head


def _text_config(info: ModelInfo) -> Any:
    text = getattr(info.config, "text_config", None)
    if text is None:
        raise ModelLoadError(f"{info.weights_dir / 'config.json'} has no text_config: not a Qwen3-VL config")
    return text


def _resolved_info(info: ModelInfo) -> ModelInfo:
    """The text tower's width and positions (a Qwen3-VL config keeps them under `text_config`)."""
    text = _text_config(info)
    limit = info.spec.max_model_len or int(getattr(text, "max_position_embeddings", 0) or 32768)
    return dataclasses.replace(info, hidden_size=int(text.hidden_size), max_model_len=limit)


def _read_json(path: Any) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text())) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc


class ColQwen3Adapter(ModelAdapter):
    """ColQwen3 / Ops-ColQwen3 / colpali-engine ColQwen3 / nemotron-colembed-vl (layout found at load)."""

    architectures: ClassVar[tuple[str, ...]] = ("ColQwen3", "OpsColQwen3Model", "ColQwen3Model", NEMOTRON_ARCHITECTURE)
    tasks: ClassVar[frozenset[Task] | None] = frozenset({"token_embed"})
    accepts_images: ClassVar[bool] = True
    image_block: ClassVar[str] = IMAGE_BLOCK

    def __init__(self, info: ModelInfo, device: torch.device, dtype: torch.dtype) -> None:
        self.layout: ColQwen3Layout = "ops"  # replaced in load_module, once the weights are read
        super().__init__(_resolved_info(info), device, dtype)
        self.image_token_id = int(self.info.config.image_token_id)
        self.image_processor, self.max_pixels = self._load_image_processor()

    @property
    def kind(self) -> ModelKind:
        return "multi-vector"

    @property
    def representations(self) -> frozenset[Representation]:
        return frozenset({"multivector"})

    # -- loading -------------------------------------------------------------------------------------
    def load_module(self) -> torch.nn.Module:
        backbone, heads, path = load_prefixed_backbone(self.info, _ALL_PREFIXES, head_prefixes=_HEADS)
        self.layout = detect_layout(self.info.architecture, heads)
        rules = layout_rules(self.layout)
        head = self._head(heads, rules.head_prefix, path)
        if rules.bidirectional or rules.skip_final_norm:
            _nemotron_backbone(backbone)
        module = ColQwen3Module(backbone, head)
        width = config_width(self.info.config, rules)
        if width is not None and width != self._width(module):
            raise ModelLoadError(
                f"{self.info.weights_dir / 'config.json'} names width {width} under {rules.dim_keys[0]!r}, "
                f"but the {self.layout} weights in {path} give {self._width(module)}",
                received=width,
                allowed=self._width(module),
            )
        return module

    def _head(self, heads: dict[str, torch.Tensor], prefix: str | None, path: object) -> torch.nn.Module | None:
        if prefix is None:
            return None
        weight = heads.get(prefix + "weight")
        if weight is None or weight.dim() != 2 or weight.shape[1] != self.info.hidden_size:
            shape = None if weight is None else list(weight.shape)
            raise ModelLoadError(
                f"{path}: '{prefix}weight' is {shape}, expected [dim, {self.info.hidden_size}] (the projection)"
            )
        return DenseHead(weight, heads.get(prefix + "bias"))

    def _width(self, module: ColQwen3Module) -> int:
        if module.head is None:
            return self.info.hidden_size
        return int(cast(DenseHead, module.head).linear.out_features)

    def _load_image_processor(self) -> tuple[Any, int]:
        """The checkpoint's Qwen2-VL image processor and its pixel cap: `max_num_visual_tokens` merged
        patches, i.e. tokens * (patch_size * merge_size)^2 pixels."""
        from transformers import AutoImageProcessor

        root = self.tokenizer_dir()
        try:
            processor = AutoImageProcessor.from_pretrained(root)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the image processor of {root}: {exc}") from exc
        extra = {**_read_json(root / "processor_config.json"), **_read_json(root / "preprocessor_config.json")}
        tokens = visual_token_budget(self.info.config, extra)
        side = int(processor.patch_size) * int(processor.merge_size)
        return processor, tokens * side * side

    @property
    def parts(self) -> ColQwen3Module:
        return cast(ColQwen3Module, self.module)

    def output_size(self, task: Task) -> int:
        return self._width(self.parts)

    # -- prompts -------------------------------------------------------------------------------------
    @property
    def role_prompts(self) -> dict[PromptRole, str]:
        return dict(_ROLE_PROMPTS)

    def apply_prompt(self, prompts: Sequence[object], prompt_name: str | None) -> list[object]:
        """`query`: text gets the family's query prefix and augmentation; `document`: text as is. Under either
        name an item with images is wrapped in the family's image template (an image query reads like a page)."""
        if prompt_name is None:
            return list(prompts)
        if prompt_name not in _ROLE_PROMPTS.values():
            raise InvalidInputError(
                f"prompt_name {prompt_name!r} is not one of this model's prompts: {sorted(_ROLE_PROMPTS.values())}",
                param="prompt_name",
                received=prompt_name,
                allowed=sorted(_ROLE_PROMPTS.values()),
            )
        return [self._prompted(p, prompt_name) for p in prompts]

    def _prompted(self, item: object, name: str) -> object:
        fp = family_prompts(self.layout)
        if isinstance(item, MultimodalInput) and item.is_text_only:
            item = item.text()
        if isinstance(item, str):
            return fp.query_prefix + item + fp.query_suffix if name == "query" else item
        if not isinstance(item, MultimodalInput):
            return item  # token ids: the caller shaped them already
        images = tuple(p for p in item.parts if isinstance(p, ImagePart))
        text = item.text("") or fp.image_suffix
        return MultimodalInput((TextPart(fp.image_prefix), *images, TextPart(text + fp.image_end)))

    # -- encoding ------------------------------------------------------------------------------------
    def tokenize(
        self,
        prompts: Sequence[Prompt | MultimodalInput],  # type: ignore[override]
        params: PoolingParams,
        *,
        truncate: int | None = None,
        side: TruncationSide | None = None,
        add_special_tokens: bool = True,
    ) -> list[TokenizedInput]:
        plain = [(i, p) for i, p in enumerate(prompts) if not isinstance(p, MultimodalInput)]
        out: list[TokenizedInput | None] = [None] * len(prompts)
        if plain:
            done = super().tokenize(
                [p for _, p in plain], params, truncate=truncate, side=side, add_special_tokens=add_special_tokens
            )
            for (i, _), tok in zip(plain, done, strict=True):
                out[i] = tok
        for i, p in enumerate(prompts):
            if isinstance(p, MultimodalInput):
                out[i] = self._with_images(p, add_special_tokens)
        return cast(list[TokenizedInput], out)

    def _with_images(self, item: MultimodalInput, add_special_tokens: bool) -> TokenizedInput:
        """Render, tokenise, and grow each `<|image_pad|>` to its image's merged patch count."""
        text = "".join(p.text if isinstance(p, TextPart) else IMAGE_BLOCK for p in item.parts)
        images = [p.image for p in item.parts if isinstance(p, ImagePart)]
        if any(im is None for im in images):
            raise RuntimeError("images must be decoded (encoder.media.load_image) before tokenisation")
        features = self.image_processor(
            images=images, size={"shortest_edge": self._min_pixels(), "longest_edge": self.max_pixels}, return_tensors="pt"
        )
        grid = features["image_grid_thw"].long()
        counts = (grid.prod(-1) // int(self.image_processor.merge_size) ** 2).tolist()
        ids = self.tokenizer.hf(text, add_special_tokens=add_special_tokens)["input_ids"]
        expanded = self._expand(list(ids), counts)
        if len(expanded) > self.info.max_model_len:
            raise InputTooLongError(len(expanded), self.info.max_model_len)
        extras = {"pixel_values": features["pixel_values"].float(), "image_grid_thw": grid}
        return TokenizedInput(input_ids=expanded, extras=extras)

    def _min_pixels(self) -> int:
        size = self.image_processor.size
        low = size.get("shortest_edge") if isinstance(size, dict) else getattr(size, "shortest_edge", None)
        return min(int(low or 0), self.max_pixels) or self.max_pixels

    def _expand(self, ids: list[int], counts: list[int]) -> list[int]:
        pads = [j for j, t in enumerate(ids) if t == self.image_token_id]
        if len(pads) != len(counts):
            raise InvalidInputError(
                f"the prompt holds {len(pads)} image placeholders for {len(counts)} images",
                param="input",
                received=len(pads),
                allowed=len(counts),
            )
        out: list[int] = []
        k = 0
        for t in ids:
            if t == self.image_token_id:
                out.extend([t] * counts[k])
                k += 1
            else:
                out.append(t)
        return out

    def forward(self, batch: Batch) -> torch.Tensor:
        """Hidden states (b, L, h) of the language model (nemotron: before the final norm)."""
        kwargs: dict[str, Any] = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if batch.pixel_values is not None:
            kwargs["pixel_values"] = batch.pixel_values.to(self.dtype)
            kwargs["image_grid_thw"] = batch.image_grid_thw
            kwargs["mm_token_type_ids"] = (batch.input_ids == self.image_token_id).long()
        return self.parts.backbone(**kwargs).last_hidden_state

    def pool(
        self, task: Task, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]
    ) -> list[torch.Tensor]:
        """token_embed: project (when the layout has a head), keep `batch.keep_mask`, truncate, L2 -> (n_i, d)."""
        if task != "token_embed":
            return super().pool(task, hidden, batch, params)
        head = self.parts.head
        projected = head(hidden) if head is not None else hidden
        dims = [p.dimensions for p in params]
        normalize = [p.use_activation is not False for p in params]
        return [v.cpu() for v in token_vectors(projected, batch.keep_mask, dims, normalize)]


def _nemotron_backbone(backbone: torch.nn.Module) -> None:
    """Bidirectional attention (mask and every attention module) and the pre-norm last-layer output."""
    language = cast(Any, backbone).language_model
    language.config.is_causal = False
    for layer in language.layers:
        layer.self_attn.is_causal = False
    language.norm = torch.nn.Identity()
