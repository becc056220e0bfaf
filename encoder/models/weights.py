"""Load a transformers backbone from safetensors whose keys carry a wrapper prefix (`bert.`, `roberta.`).

Wrapped checkpoints (Stanford `HF_ColBERT`, Jina ColBERT) store the encoder under the wrapper's attribute
name next to extra heads (`linear.weight`). The backbone is built from its config, the prefix is stripped,
and the remaining tensors are handed back for the heads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from encoder.errors import ModelLoadError
from encoder.models.base import load_safetensors_file
from encoder.resolve import ModelInfo

__all__ = ["load_prefixed_backbone", "read_safetensors_dir"]

_OPTIONAL = ("position_ids", "token_type_ids")  # buffers some checkpoints omit


def read_safetensors_dir(folder: Path) -> tuple[dict[str, torch.Tensor], Path]:
    """Every tensor of `model.safetensors` or of the shards listed in `model.safetensors.index.json`.

    Returns the tensors and the file (or index) that names them, for error messages.
    """
    single = folder / "model.safetensors"
    if single.is_file():
        return load_safetensors_file(single), single
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        raise ModelLoadError(f"{single} is missing (no sharded {index.name} either)")
    try:
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise ModelLoadError(f"cannot read {index}: {exc}") from exc
    tensors: dict[str, torch.Tensor] = {}
    for shard in shards:
        tensors.update(load_safetensors_file(folder / shard))
    return tensors, index


def _split(
    state: dict[str, torch.Tensor], prefixes: Sequence[str], head_prefixes: Sequence[str]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(backbone tensors with the prefix stripped, head tensors); unprefixed keys belong to the backbone."""
    backbone, heads = {}, {}
    for key, tensor in state.items():
        if key.startswith(tuple(head_prefixes)):
            heads[key] = tensor
            continue
        prefix = next((p for p in prefixes if key.startswith(p)), "")
        backbone[key[len(prefix) :]] = tensor
    return backbone, heads


def _build(info: ModelInfo) -> torch.nn.Module:
    from transformers import AutoModel

    try:
        return AutoModel.from_config(info.config, trust_remote_code=info.spec.trust_remote_code)
    except (ValueError, ImportError, OSError, KeyError) as exc:
        hint = "" if info.spec.trust_remote_code else " (if it ships its own code, pass trust_remote_code)"
        raise ModelLoadError(f"cannot build the backbone of {info.weights_dir}: {exc}{hint}") from exc


def load_prefixed_backbone(
    info: ModelInfo, prefixes: Sequence[str], head_prefixes: Sequence[str]
) -> tuple[torch.nn.Module, dict[str, torch.Tensor], Path]:
    """Build `AutoModel` from `info.config` and load the weights of `info.weights_dir` into it.

    Keys starting with one of `prefixes` lose it; keys starting with `head_prefixes` are returned apart.
    A backbone tensor that is missing (other than the optional HF pooler and id buffers) is a
    `ModelLoadError` naming the file. Returns (backbone, head tensors, weights file).
    """
    state, path = read_safetensors_dir(info.weights_dir)
    own, heads = _split(state, prefixes, head_prefixes)
    backbone = _build(info)
    try:
        result: Any = backbone.load_state_dict(own, strict=False)
    except RuntimeError as exc:  # shape mismatches
        config = info.weights_dir / "config.json"
        raise ModelLoadError(f"{path} does not fit the backbone of {config}: {exc}") from exc
    missing = [k for k in result.missing_keys if not k.startswith("pooler.") and not k.endswith(_OPTIONAL)]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ModelLoadError(
            f"{path} lacks {len(missing)} backbone tensors ({shown}); expected them under one of "
            f"{[p for p in prefixes if p]} or unprefixed"
        )
    return backbone, heads, path
