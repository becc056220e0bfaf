"""ColQwen3-family checkpoints: which published layout a folder is, and that family's prompts.

Four layouts share the Qwen3-VL backbone (`transformers.Qwen3VLModel`) and differ in weight prefixes, the
projection head and the attention (WIRE_AND_FORMATS 2(e)). Detection, first match wins:

============ ========================================== ======================== =================== ==========
layout       rule                                       backbone prefix          projection          width key
============ ========================================== ======================== =================== ==========
``nemotron`` architecture ``Qwen3VLNemotronEmbedModel`` ``model.`` or none       none (hidden size)  --
``tomoro``   a ``vlm.`` key or ``embedding_proj_layer`` ``vlm.model.``           embedding_proj_layer ``embed_dim``
``colpali``  a ``custom_text_proj.weight`` key          ``model.``               custom_text_proj    ``dim``
``ops``      otherwise (unprefixed ``visual.*`` ...)    none                     none (hidden size)  ``dims``
============ ========================================== ======================== =================== ==========

Nemotron attends bidirectionally and reads the last layer before the final RMSNorm. Prompts per family (the
image template and the query augmentation of colpali-engine's ColQwen processors; nemotron's `query: ` /
`passage: ` prefixes) are applied only when a caller names them (`TokenOptions.prompt_name`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from encoder.errors import ModelLoadError

__all__ = [
    "IMAGE_BLOCK",
    "ColQwen3Layout",
    "FamilyPrompts",
    "NEMOTRON_ARCHITECTURE",
    "LayoutRules",
    "config_width",
    "detect_layout",
    "family_prompts",
    "layout_rules",
    "visual_token_budget",
]

ColQwen3Layout = Literal["tomoro", "ops", "colpali", "nemotron"]
IMAGE_BLOCK = "<|vision_start|><|image_pad|><|vision_end|>"
"""One image's placeholder in a prompt; the single `<|image_pad|>` grows to the image's merged patch count."""

NEMOTRON_ARCHITECTURE = "Qwen3VLNemotronEmbedModel"
_MAX_VISUAL_TOKENS = 16384  # hard bound on max_num_visual_tokens, whatever a config asks
_DEFAULT_VISUAL_TOKENS = 768  # colpali-engine's default when a checkpoint names none


@dataclass(frozen=True, slots=True)
class LayoutRules:
    """How one layout stores its weights and shapes its output."""

    prefixes: tuple[str, ...]  # backbone key prefixes to strip, longest first
    head_prefix: str | None  # projection tensors' prefix (`<name>.weight`, `<name>.bias`), None = no projection
    dim_keys: tuple[str, ...]  # config keys naming the output width, first present wins
    bidirectional: bool  # attention over the whole sequence (nemotron)
    skip_final_norm: bool  # read the last layer before the final RMSNorm (nemotron)
    dropped: tuple[str, ...]  # key prefixes ignored (a generation head the embedder never runs)


_RULES: dict[ColQwen3Layout, LayoutRules] = {
    "tomoro": LayoutRules(("vlm.model.", "vlm."), "embedding_proj_layer.", ("embed_dim",), False, False, ("vlm.lm_head.",)),
    "ops": LayoutRules(("model.",), None, ("dims",), False, False, ("lm_head.",)),
    "colpali": LayoutRules(("model.",), "custom_text_proj.", ("dim",), False, False, ("lm_head.",)),
    "nemotron": LayoutRules(("model.",), None, (), True, True, ("lm_head.",)),
}


@dataclass(frozen=True, slots=True)
class FamilyPrompts:
    """A family's prompt texts: the image document template and the text query shape."""

    image_prefix: str  # before the image blocks of a document
    image_suffix: str  # after them when the item has no text of its own
    image_end: str  # closes the document prompt
    query_prefix: str  # before a text query
    query_suffix: str  # after a text query (the query augmentation tokens)


_COLPALI_PROMPTS = FamilyPrompts(
    image_prefix="<|im_start|>user\n",
    image_suffix="Describe the image.",
    image_end="<|im_end|><|endoftext|>",
    query_prefix="",
    query_suffix="<|endoftext|>" * 10,
)
_PROMPTS: dict[ColQwen3Layout, FamilyPrompts] = {
    "tomoro": _COLPALI_PROMPTS,
    "ops": _COLPALI_PROMPTS,
    "colpali": _COLPALI_PROMPTS,
    "nemotron": FamilyPrompts(
        image_prefix="<|im_start|>user\npassage: ",
        image_suffix="",
        image_end="<|im_end|>",
        query_prefix="query: ",
        query_suffix="",
    ),
}


def detect_layout(architecture: str, keys: Iterable[str]) -> ColQwen3Layout:
    """The layout of a checkpoint from its architecture name and weight keys (rules in the module docstring).

    >>> detect_layout("ColQwen3", ["vlm.model.visual.x", "embedding_proj_layer.weight"])
    'tomoro'
    >>> detect_layout("ColQwen3", ["model.visual.x", "custom_text_proj.weight"])
    'colpali'
    >>> detect_layout("OpsColQwen3Model", ["visual.x", "language_model.y"])
    'ops'
    """
    if architecture == NEMOTRON_ARCHITECTURE:
        return "nemotron"
    names = list(keys)
    if any(k.startswith(("vlm.", "embedding_proj_layer.")) for k in names):
        return "tomoro"
    if any(k.startswith("custom_text_proj.") for k in names):
        return "colpali"
    return "ops"


def layout_rules(layout: ColQwen3Layout) -> LayoutRules:
    return _RULES[layout]


def family_prompts(layout: ColQwen3Layout) -> FamilyPrompts:
    return _PROMPTS[layout]


def config_width(config: Any, rules: LayoutRules) -> int | None:
    """The output width a config names under the layout's keys (None when it names none)."""
    for key in rules.dim_keys:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def visual_token_budget(config: Any, processor_config: dict[str, Any]) -> int:
    """`max_num_visual_tokens`: the config (or `hf_overrides`) first, then the processor files, else 768;
    bounded to [1, 16384] so no checkpoint or override makes one image unboundedly long.

    >>> visual_token_budget(object(), {"max_num_visual_tokens": 1280})
    1280
    """
    raw = getattr(config, "max_num_visual_tokens", None) or processor_config.get("max_num_visual_tokens")
    value = _DEFAULT_VISUAL_TOKENS if raw is None else raw
    if not isinstance(value, int) or not 1 <= value <= _MAX_VISUAL_TOKENS:
        raise ModelLoadError(
            f"max_num_visual_tokens must be an integer in [1, {_MAX_VISUAL_TOKENS}]",
            received=raw,
            allowed=f"1..{_MAX_VISUAL_TOKENS}",
        )
    return value
