"""Broken or incomplete ColBERT checkpoints fail at load with an error that names the file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from encoder import Engine, ModelLoadError, ModelSpec

PYLATE = {"architectures": ["ColBERTModernBertModel"]}


def _rewrite(path: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    state = load_file(str(path))
    edit(state)
    save_file(state, str(path))


def test_missing_projection_names_the_weights_file(tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model("hf_colbert")
    _rewrite(folder / "model.safetensors", lambda s: s.pop("linear.weight"))
    with pytest.raises(ModelLoadError, match=r"model\.safetensors has no 'linear\.weight'"):
        Engine.load(ModelSpec(source=str(folder)))


def test_projection_of_the_wrong_width(tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model("hf_colbert")
    _rewrite(folder / "model.safetensors", lambda s: s.update({"linear.weight": torch.zeros(16, 7)}))
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: 'linear\.weight' has shape \[16, 7\]"):
        Engine.load(ModelSpec(source=str(folder)))


def test_missing_backbone_tensors(tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model("jina_colbert")
    _rewrite(folder / "model.safetensors", lambda s: [s.pop(k) for k in list(s) if ".layer.1." in k])
    with pytest.raises(ModelLoadError, match=r"model\.safetensors lacks \d+ backbone tensors"):
        Engine.load(ModelSpec(source=str(folder), hf_overrides={"architectures": ["ColBERTJinaRobertaModel"]}))


def test_missing_dense_weights_file(tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model("pylate_colbert")
    (folder / "1_Dense" / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"1_Dense/model\.safetensors is missing"):
        Engine.load(ModelSpec(source=str(folder), hf_overrides=PYLATE))


def test_prefix_that_is_not_a_single_token(tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model("pylate_colbert")
    cfg_path = folder / "config_sentence_transformers.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["query_prefix"] = "[QX] "
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"query marker '\[QX\] ' is not a single token"):
        Engine.load(ModelSpec(source=str(folder), hf_overrides=PYLATE))
