"""Model resolution: task table, sentence-transformers files, overrides and their priority."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from encoder import ModelLoadError, ModelSpec, PoolerConfig, resolve_model, tasks_for_architecture


@pytest.mark.parametrize(
    ("arch", "tasks"),
    [
        ("BertModel", {"embed", "token_embed"}),
        ("Qwen3ForTextEncoding", {"embed", "token_embed"}),
        ("GritLMEmbeddingModel", {"embed", "token_embed"}),
        ("InternLM2ForRewardModel", {"embed", "token_embed", "token_classify"}),
        ("Qwen2ForRewardModeling", {"embed", "token_embed", "token_classify"}),
        ("XLMRobertaForSequenceClassification", {"classify", "token_classify", "score"}),
        ("BertForTokenClassification", {"classify", "token_classify", "score"}),
        ("JambaForSequenceClassification", {"classify", "token_classify", "score"}),
        ("SomeClassificationModel", {"classify", "token_classify", "score"}),
    ],
)
def test_architecture_table(arch: str, tasks: set[str]) -> None:
    assert tasks_for_architecture(arch) == tasks


def test_convert_overrides_the_table() -> None:
    assert tasks_for_architecture("Qwen2ForCausalLM", "classify") == {"classify", "token_classify", "score"}
    assert tasks_for_architecture("BertModel", "reward") == {"embed", "token_embed", "token_classify"}


def test_st_pooling_and_length_win_over_model_defaults(tiny_store: Callable[[str], Path]) -> None:
    info = resolve_model(ModelSpec(source=str(tiny_store("bert_st_mean"))))
    assert (info.pooling_type, info.max_model_len, info.architecture) == ("MEAN", 64, "BertModel")
    assert info.tasks == {"embed", "token_embed"}


def test_pooler_config_wins_over_st_config(tiny_store: Callable[[str], Path]) -> None:
    spec = ModelSpec(source=str(tiny_store("bert_st_mean")), pooler_config=PoolerConfig(pooling_type="CLS"))
    assert resolve_model(spec).pooling_type == "CLS"


def test_model_defaults_without_st_files(tiny_store: Callable[[str], Path]) -> None:
    xlmr = resolve_model(ModelSpec(source=str(tiny_store("xlmr_cls"))))
    assert (xlmr.pooling_type, xlmr.is_decoder, xlmr.max_model_len) == ("CLS", False, 128)
    dec = resolve_model(ModelSpec(source=str(tiny_store("decoder_right"))))
    assert (dec.pooling_type, dec.is_decoder) == ("LAST", True)


def test_hf_overrides_merge_into_config(tiny_store: Callable[[str], Path]) -> None:
    spec = ModelSpec(
        source=str(tiny_store("xlmr_cls")),
        hf_overrides={
            "matryoshka_dimensions": [8, 16],
            "architectures": ["XLMRobertaForSequenceClassification"],
        },
    )
    info = resolve_model(spec)
    assert info.is_matryoshka and info.matryoshka_dimensions == (8, 16)
    assert info.architecture == "XLMRobertaForSequenceClassification"
    assert "classify" in info.tasks


def test_max_model_len_override(tiny_store: Callable[[str], Path]) -> None:
    assert resolve_model(ModelSpec(source=str(tiny_store("xlmr_cls")), max_model_len=16)).max_model_len == 16


def test_missing_folder_and_config_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a directory"):
        resolve_model(ModelSpec(source=str(tmp_path / "nope" / "x.bin")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        resolve_model(ModelSpec(source=str(tmp_path / "empty")))


def test_remote_code_needs_trust(tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model("xlmr_cls")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = "tiny-remote"
    cfg["auto_map"] = {"AutoConfig": "configuration_tiny.TinyConfig"}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "configuration_tiny.py").write_text(
        "from transformers import PretrainedConfig\n\n"
        "class TinyConfig(PretrainedConfig):\n    model_type = 'tiny-remote'\n"
    )
    with pytest.raises(ModelLoadError, match="trust_remote_code"):
        resolve_model(ModelSpec(source=str(folder)))
    assert resolve_model(ModelSpec(source=str(folder), trust_remote_code=True)).config.model_type == "tiny-remote"


def test_unresolvable_hub_id_is_a_clear_error() -> None:
    with pytest.raises(ModelLoadError, match="not-a-real/model-id"):
        resolve_model(ModelSpec(source="not-a-real/model-id"))
