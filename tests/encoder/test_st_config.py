"""sentence-transformers files (encoder/st_config.py): modules.json, Pooling, Dense, Normalize and side files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from encoder.errors import ModelLoadError
from encoder.st_config import STConfig, read_st_config


def test_sentence_transformers_files_are_read(tiny_store: Callable[[str], Path]) -> None:
    st = read_st_config(tiny_store("bert_st_mean"))
    assert st.pooling_type == "MEAN"
    assert st.normalize is True
    assert st.max_seq_length == 64
    assert st.module_types == ("Transformer", "Pooling", "Normalize")


def _write(root: Path, name: str, data: object) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(json.dumps(data))


def test_a_full_layout_by_hand(tmp_path: Path) -> None:
    modules = [
        {"type": "sentence_transformers.models.Transformer", "path": "0_Transformer"},
        {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"},
        {"type": "sentence_transformers.models.Dense", "path": "2_Dense"},
        {"type": "sentence_transformers.models.Dense", "path": "3_Dense"},
        {"type": "sentence_transformers.models.Normalize", "path": "4_Normalize"},
    ]
    _write(tmp_path, "modules.json", modules)
    _write(tmp_path, "1_Pooling/config.json", {"pooling_mode": "LastToken", "include_prompt": False})
    _write(tmp_path, "0_Transformer/sentence_bert_config.json", {"max_seq_length": 128, "do_lower_case": True})
    st_cfg = {"prompts": {"query": "q: ", "passage": "p: "}, "default_prompt_name": "query", "query_length": 32}
    _write(tmp_path, "config_sentence_transformers.json", st_cfg)
    st = read_st_config(tmp_path)
    assert st == STConfig(
        transformer_path="0_Transformer",
        pooling_type="LAST",
        include_prompt=False,
        normalize=True,
        dense_paths=("2_Dense", "3_Dense"),
        max_seq_length=128,
        do_lower_case=True,
        prompts={"query": "q: ", "passage": "p: "},
        default_prompt_name="query",
        extra=st_cfg,
        module_types=("Transformer", "Pooling", "Dense", "Dense", "Normalize"),
    )


def test_legacy_pooling_flags_and_an_empty_folder(tmp_path: Path) -> None:
    assert read_st_config(tmp_path) == STConfig()
    _write(tmp_path, "modules.json", [{"type": "Pooling", "path": "p"}])
    _write(tmp_path, "p/config.json", {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True})
    _write(tmp_path, "sentence_bert_config.json", {"max_seq_length": "long"})  # not an int: ignored
    st = read_st_config(tmp_path)
    assert (st.pooling_type, st.include_prompt, st.max_seq_length, st.transformer_path) == ("MEAN", True, None, "")


def test_unreadable_files_are_load_errors(tmp_path: Path) -> None:
    (tmp_path / "modules.json").write_text("{oops")
    with pytest.raises(ModelLoadError, match=r"cannot read .*modules\.json"):
        read_st_config(tmp_path)
    (tmp_path / "modules.json").write_text("3")
    with pytest.raises(ModelLoadError, match=r"modules\.json does not hold a JSON object"):
        read_st_config(tmp_path)
