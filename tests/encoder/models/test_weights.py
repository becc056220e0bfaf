"""Prefixed backbone weights (encoder/models/weights.py): single and sharded safetensors, prefix split, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from encoder.errors import ModelLoadError
from encoder.models.weights import _split, read_safetensors_dir


def test_single_file_and_shards_read_the_same_tensors(tmp_path: Path) -> None:
    a, b = torch.arange(6.0).reshape(2, 3), torch.ones(4)
    single = tmp_path / "single"
    single.mkdir()
    save_file({"bert.a": a, "linear.weight": b}, single / "model.safetensors")
    tensors, path = read_safetensors_dir(single)
    assert path == single / "model.safetensors" and set(tensors) == {"bert.a", "linear.weight"}
    assert torch.equal(tensors["bert.a"], a)
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    save_file({"bert.a": a}, sharded / "s1.safetensors")
    save_file({"linear.weight": b}, sharded / "s2.safetensors")
    index = {"weight_map": {"bert.a": "s1.safetensors", "linear.weight": "s2.safetensors"}}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    tensors, path = read_safetensors_dir(sharded)
    assert path.name == "model.safetensors.index.json" and torch.equal(tensors["linear.weight"], b)


def test_missing_or_broken_weights_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"model\.safetensors is missing \(no sharded model\.safetensors\.index"):
        read_safetensors_dir(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text("{}")
    with pytest.raises(ModelLoadError, match=r"cannot read .*model\.safetensors\.index\.json: 'weight_map'"):
        read_safetensors_dir(tmp_path)


def test_split_strips_the_wrapper_prefix_and_keeps_heads_apart() -> None:
    t = torch.zeros(1)
    state = {"bert.encoder.w": t, "roberta.pooler.b": t, "embeddings.x": t, "linear.weight": t}
    backbone, heads = _split(state, ["bert.", "roberta."], ["linear."])
    assert sorted(backbone) == ["embeddings.x", "encoder.w", "pooler.b"] and list(heads) == ["linear.weight"]
