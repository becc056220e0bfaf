"""ColBERT settings (encoder/colbert_config.py): PyLate keys over artifact.metadata over layout defaults."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from encoder import ModelLoadError
from encoder.colbert_config import LAYOUT_DEFAULTS, read_colbert_settings


def test_empty_prefix_means_no_marker(tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model("pylate_colbert")
    cfg_path = folder / "config_sentence_transformers.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["document_prefix"] = ""
    cfg_path.write_text(json.dumps(cfg))
    settings = read_colbert_settings(folder, "pylate", cfg)
    assert settings.document_marker is None and settings.query_marker == "[Q] "


def test_artifact_metadata_settings(tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model("hf_colbert")
    meta = json.loads((folder / "artifact.metadata").read_text())
    meta.update(mask_punctuation=False, attend_to_mask_tokens=True, query_maxlen=8)
    (folder / "artifact.metadata").write_text(json.dumps(meta))
    settings = read_colbert_settings(folder, "stanford", {})
    assert settings.skiplist_words == () and settings.attend_to_expansion and settings.query_length == 8
    (folder / "artifact.metadata").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"artifact\.metadata"):
        read_colbert_settings(folder, "stanford", {})


def test_pylate_keys_win_over_artifact_metadata_over_defaults(tmp_path: Path) -> None:
    assert read_colbert_settings(tmp_path, "jina", {}) == LAYOUT_DEFAULTS["jina"]
    (tmp_path / "artifact.metadata").write_text(json.dumps({"query_maxlen": 16, "doc_maxlen": 100, "dim": 96}))
    pylate = {"query_length": 24, "skiplist_words": ["a", "b"], "do_query_expansion": False, "unrelated": 1}
    settings = read_colbert_settings(tmp_path, "stanford", pylate)
    assert (settings.query_length, settings.document_length, settings.dim) == (24, 100, 96)
    assert settings.skiplist_words == ("a", "b") and settings.query_expansion is False
    assert settings.query_marker == "[unused0]" and settings.attend_to_expansion is False


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"query_length": 1}, r"query_length and document_length must be >= 2, got 1 and 220"),
        ({"document_length": "long"}, r"invalid ColBERT settings in"),
    ],
)
def test_bad_values_are_load_errors(tmp_path: Path, extra: dict[str, object], message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        read_colbert_settings(tmp_path, "stanford", extra)
    (tmp_path / "artifact.metadata").write_text("[1]")
    with pytest.raises(ModelLoadError, match=r"must hold a JSON object of ColBERT settings"):
        read_colbert_settings(tmp_path, "stanford", {})
