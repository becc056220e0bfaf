"""Turn a `ModelSpec` into a `ModelInfo`: where the files are, what the model is, which tasks it serves."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encoder.errors import ModelLoadError
from encoder.jina_config import read_flash_config
from encoder.prompts import PromptRole, role_prompt_names
from encoder.st_config import STConfig, read_st_config
from encoder.types import ConvertMode, ModelSpec, PoolingType, Task

__all__ = [
    "DECODER_MODEL_TYPES",
    "ModelInfo",
    "locate",
    "position_limit",
    "resolve_model",
    "tasks_for_architecture",
]

DECODER_MODEL_TYPES = frozenset(
    {
        "qwen2",
        "qwen3",
        "mistral",
        "llama",
        "gemma",
        "gemma2",
        "gemma3",
        "gemma3_text",
        "phi3",
        "internlm2",
        "qwen2_vl",
        "qwen3_vl",
        "gpt2",
        "gpt_neox",
        "starcoder2",
        "olmo",
        "olmo2",
        "granite",
    }
)
_ROBERTA_TYPES = frozenset({"roberta", "xlm-roberta", "camembert", "bge-m3"})  # positions start after pad_id
_DEFAULT_TASK_ORDER: tuple[Task, ...] = ("embed", "classify", "token_embed", "token_classify", "score")

_EMBED: frozenset[Task] = frozenset({"embed", "token_embed"})
_CLASSIFY: frozenset[Task] = frozenset({"classify", "token_classify", "score"})
_REWARD: frozenset[Task] = frozenset({"embed", "token_embed", "token_classify"})
_CONVERT: dict[ConvertMode, frozenset[Task]] = {"embed": _EMBED, "classify": _CLASSIFY, "reward": _REWARD}


def tasks_for_architecture(architecture: str, convert: ConvertMode = "auto") -> frozenset[Task]:
    """vLLM's seed table from architecture name to supported pooling tasks.

    >>> sorted(tasks_for_architecture("BertModel"))
    ['embed', 'token_embed']
    >>> sorted(tasks_for_architecture("XLMRobertaForSequenceClassification"))
    ['classify', 'score', 'token_classify']
    """
    if convert in _CONVERT:
        return _CONVERT[convert]
    if re.search(r"For\w*Classification$|ClassificationModel$", architecture):
        return _CLASSIFY
    if re.search(r"ForRewardModeling$|RewardModel$", architecture):
        return _REWARD
    if re.search(r"ForTextEncoding$|EmbeddingModel$|Model$", architecture):
        return _EMBED
    if convert == "none":
        return frozenset()
    if architecture.endswith("ForCausalLM") or architecture.endswith("ForMaskedLM"):
        return _EMBED
    return frozenset()


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Everything decided about a model before its weights are loaded."""

    name: str  # served model name
    root: Path  # checkpoint folder
    weights_dir: Path  # folder with config.json + safetensors (ST transformer path)
    config: Any  # transformers PretrainedConfig, overrides applied
    architecture: str  # config.architectures[0] after overrides
    tasks: frozenset[Task]  # tasks this model serves
    pooling_type: PoolingType  # sequence pooling for embed
    normalize: bool  # L2-normalise embed outputs by default
    max_model_len: int  # tokens per input, special tokens included
    is_decoder: bool  # causal attention, LAST pooling by default
    is_matryoshka: bool  # accepts `dimensions`
    matryoshka_dimensions: tuple[int, ...] | None  # allowed `dimensions`, None = any
    hidden_size: int  # width of the hidden states
    st: STConfig  # sentence-transformers files
    spec: ModelSpec  # the spec it came from
    default_task: Task  # pooler_config.task, else the first served of embed/classify/token_embed/...
    use_activation: bool | None  # pooler_config default for use_activation (None = each task's own default)
    prompt_names: dict[PromptRole, str]  # ST prompt name for queries / documents (encode_query semantics)


def locate(source: str, revision: str | None = None) -> Path:
    """A local folder as is; otherwise a hub id fetched the ordinary way (hub cache, HF_HUB_OFFLINE honoured)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists() or source.startswith((".", "/", "~")):
        raise ModelLoadError(f"model path {source!r} is not a directory")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=source, revision=revision))
    except Exception as exc:
        raise ModelLoadError(
            f"cannot resolve model {source!r}: not a local directory and the hub download failed ({exc})"
        ) from exc


def _load_config(weights_dir: Path, spec: ModelSpec) -> Any:
    from transformers import AutoConfig

    if not (weights_dir / "config.json").is_file():
        raise ModelLoadError(f"{weights_dir / 'config.json'} is missing")
    # Jina's flash XLM-R names remote code: read as JSON instead, so an unreachable auto_map still loads
    config = read_flash_config(weights_dir, spec.trust_remote_code)
    if config is None:
        try:
            config = AutoConfig.from_pretrained(weights_dir, trust_remote_code=spec.trust_remote_code)
        except ValueError as exc:
            hint = "" if spec.trust_remote_code else " (if it ships its own code, pass trust_remote_code)"
            raise ModelLoadError(f"cannot read {weights_dir / 'config.json'}: {exc}{hint}") from exc
    for key, value in spec.hf_overrides.items():
        setattr(config, key, value)
    return config


def position_limit(config: Any, default: int = 512) -> int:
    """Tokens the backbone can give positions to: `max_position_embeddings`, less RoBERTa's offset
    (its positions start after `pad_token_id`) for the RoBERTa family. The one place this rule lives."""
    limit = int(getattr(config, "max_position_embeddings", 0) or default)
    if getattr(config, "model_type", "") in _ROBERTA_TYPES:
        limit -= int(getattr(config, "pad_token_id", 1) or 1) + 1
    return limit


def _max_model_len(config: Any, st: STConfig, spec: ModelSpec) -> int:
    if spec.max_model_len is not None:
        return spec.max_model_len
    if st.max_seq_length:
        return st.max_seq_length
    return position_limit(config)


def _default_task(tasks: frozenset[Task], spec: ModelSpec) -> Task:
    forced = spec.pooler_config.task if spec.pooler_config else None
    if forced:
        return forced
    return next((t for t in _DEFAULT_TASK_ORDER if t in tasks), sorted(tasks)[0])


def _use_activation(spec: ModelSpec) -> bool | None:
    pc = spec.pooler_config
    if pc is None:
        return None
    return pc.use_activation if pc.use_activation is not None else pc.normalize


def resolve_model(spec: ModelSpec, dedicated: Callable[[str], frozenset[Task] | None] | None = None) -> ModelInfo:
    """Read config.json (+ hf_overrides) and the ST files; decide tasks, pooling, limits.

    `dedicated` gives the tasks of architectures with a dedicated adapter (ColBERT, BGE-M3, ...).
    Priority for pooling and normalisation: pooler_config > sentence-transformers config > model defaults.
    """
    root = locate(spec.source, spec.revision)
    st = read_st_config(root)
    weights_dir = root / st.transformer_path if st.transformer_path else root
    config = _load_config(weights_dir, spec)
    architectures = list(getattr(config, "architectures", None) or [])
    architecture = architectures[0] if architectures else type(config).__name__.replace("Config", "Model")
    tasks = (dedicated(architecture) if dedicated else None) or tasks_for_architecture(architecture, spec.convert)
    if spec.convert in _CONVERT:
        tasks = _CONVERT[spec.convert]
    if not tasks:
        raise ModelLoadError(
            f"architecture {architecture!r} of {spec.source!r} maps to no pooling task; "
            "pass convert='embed' or 'classify' to serve it"
        )
    is_decoder = bool(getattr(config, "is_causal", False)) or config.model_type in DECODER_MODEL_TYPES
    pc = spec.pooler_config
    pooling: PoolingType = (pc and pc.pooling_type) or st.pooling_type or ("LAST" if is_decoder else "CLS")
    normalize = pc.normalize if pc and pc.normalize is not None else True
    dims = getattr(config, "matryoshka_dimensions", None)
    return ModelInfo(
        name=spec.served_name,
        root=root,
        weights_dir=weights_dir,
        config=config,
        architecture=architecture,
        tasks=tasks,
        pooling_type=pooling,
        normalize=normalize,
        max_model_len=_max_model_len(config, st, spec),
        is_decoder=is_decoder,
        is_matryoshka=bool(dims) or bool(getattr(config, "is_matryoshka", False)),
        matryoshka_dimensions=tuple(dims) if dims else None,
        hidden_size=int(getattr(config, "hidden_size", 0) or getattr(config, "d_model", 0)),
        st=st,
        spec=spec,
        default_task=_default_task(tasks, spec),
        use_activation=_use_activation(spec),
        prompt_names=role_prompt_names(st.prompts, st.default_prompt_name),
    )
