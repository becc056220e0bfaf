"""Read the sentence-transformers files of a checkpoint folder (modules.json and friends)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from encoder.errors import ModelLoadError
from poolers.pooling import PoolingType

__all__ = ["STConfig", "read_st_config"]

_POOLING_KEYS: tuple[tuple[str, PoolingType], ...] = (
    ("pooling_mode_cls_token", "CLS"),
    ("pooling_mode_mean_tokens", "MEAN"),
    ("pooling_mode_lasttoken", "LAST"),
)


class STConfig(msgspec.Struct, frozen=True):
    """What the sentence-transformers files of a folder say; every field is None/empty when absent."""

    transformer_path: str = ""  # sub-folder holding config.json + weights ("" = the root)
    pooling_type: PoolingType | None = None  # from 1_Pooling/config.json
    include_prompt: bool = True  # Pooling's include_prompt
    normalize: bool = False  # a Normalize module is present
    dense_paths: tuple[str, ...] = ()  # Dense module folders, in order
    max_seq_length: int | None = None  # sentence_bert_config.json
    do_lower_case: bool = False  # sentence_bert_config.json
    prompts: dict[str, str] = {}  # config_sentence_transformers.json prompts
    default_prompt_name: str | None = None  # config_sentence_transformers.json
    extra: dict[str, Any] = {}  # the whole config_sentence_transformers.json (ColBERT keys etc.)
    module_types: tuple[str, ...] = ()  # the `type` of every module, in order


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict | list):
        raise ModelLoadError(f"{path} does not hold a JSON object")
    return data  # type: ignore[return-value]


def _pooling_type(cfg: dict[str, Any]) -> PoolingType | None:
    mode = cfg.get("pooling_mode")
    if isinstance(mode, str):
        named = {"cls": "CLS", "mean": "MEAN", "lasttoken": "LAST"}.get(mode.lower())
        if named:
            return named  # type: ignore[return-value]
    for key, kind in _POOLING_KEYS:
        if cfg.get(key):
            return kind
    return None


def read_st_config(root: Path) -> STConfig:
    """Parse modules.json, the Pooling/Dense/Normalize modules and the ST side files under `root`."""
    fields: dict[str, Any] = {}
    modules_file = root / "modules.json"
    if modules_file.is_file():
        modules = _read_json(modules_file)
        types: list[str] = []
        dense: list[str] = []
        entries: list[dict[str, Any]] = modules if isinstance(modules, list) else []
        for module in entries:
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            path = str(module.get("path", ""))
            types.append(kind)
            if kind == "Transformer" or kind.endswith("Transformer"):
                fields["transformer_path"] = path
            elif kind == "Pooling" and (root / path / "config.json").is_file():
                pooling_cfg = _read_json(root / path / "config.json")
                fields["pooling_type"] = _pooling_type(pooling_cfg)
                fields["include_prompt"] = bool(pooling_cfg.get("include_prompt", True))
            elif kind == "Dense":
                dense.append(path)
            elif kind == "Normalize":
                fields["normalize"] = True
        fields["dense_paths"] = tuple(dense)
        fields["module_types"] = tuple(types)
    sbert = root / fields.get("transformer_path", "") / "sentence_bert_config.json"
    if not sbert.is_file():
        sbert = root / "sentence_bert_config.json"
    if sbert.is_file():
        sbert_cfg = _read_json(sbert)
        if isinstance(sbert_cfg.get("max_seq_length"), int):
            fields["max_seq_length"] = sbert_cfg["max_seq_length"]
        fields["do_lower_case"] = bool(sbert_cfg.get("do_lower_case", False))
    st_file = root / "config_sentence_transformers.json"
    if st_file.is_file():
        st_cfg = _read_json(st_file)
        fields["extra"] = st_cfg
        fields["prompts"] = {str(k): str(v) for k, v in (st_cfg.get("prompts") or {}).items()}
        fields["default_prompt_name"] = st_cfg.get("default_prompt_name")
    return STConfig(**fields)
