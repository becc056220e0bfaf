"""Service configuration (retrieval/config.py): `NAME=SOURCE` model arguments, JSON options, keys and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from encoder import ModelSpec
from retrieval.config import ServiceConfig, default_model_source, parse_model_arg


def test_model_argument_with_and_without_a_name() -> None:
    named = parse_model_arg("e5=/models/e5=v2", dtype="float16", max_model_len=128)
    assert (named.name, named.source, named.dtype, named.max_model_len) == ("e5", "/models/e5=v2", "float16", 128)
    bare = parse_model_arg("BAAI/bge-m3")
    assert (bare.name, bare.source, bare.hf_overrides, bare.pooler_config) == (None, "BAAI/bge-m3", {}, None)
    defaults = ModelSpec(source="x")
    assert (bare.max_batch_tokens, bare.max_wait_ms) == (defaults.max_batch_tokens, defaults.max_wait_ms)
    tuned = parse_model_arg("x", max_batch_tokens=512, max_wait_ms=2.5, trust_remote_code=True)
    assert (tuned.max_batch_tokens, tuned.max_wait_ms, tuned.trust_remote_code) == (512, 2.5, True)


def test_json_options_are_parsed_and_checked() -> None:
    spec = parse_model_arg(
        "x", hf_overrides='{"architectures": ["BgeM3EmbeddingModel"]}', pooler_config='{"pooling_type": "CLS"}'
    )
    assert spec.hf_overrides == {"architectures": ["BgeM3EmbeddingModel"]}
    assert spec.pooler_config is not None and spec.pooler_config.pooling_type == "CLS"
    with pytest.raises(ValueError, match=r"^--hf-overrides must be a JSON object, got list$"):
        parse_model_arg("x", hf_overrides="[1]")
    with pytest.raises(ValueError, match=r"^--pooler-config must be a JSON object: "):
        parse_model_arg("x", pooler_config="{bad")


def test_keys_and_paths() -> None:
    cfg = ServiceConfig(api_key="k0", admin_keys=("k1",), data_dir="~/retrieval-data")
    assert cfg.all_admin_keys == ("k1", "k0") and ServiceConfig(admin_keys=("k1",)).all_admin_keys == ("k1",)
    assert cfg.data_path == Path.home() / "retrieval-data"
    assert (Path(default_model_source()) / "config.json").is_file()  # the bundled MiniLM


def test_bundled_names_the_bundled_model_beside_others() -> None:
    from retrieval.cli import config_from_args
    from retrieval.config import DEFAULT_MODEL_NAME

    for arg in ("bundled", DEFAULT_MODEL_NAME):
        spec = parse_model_arg(arg)
        assert (spec.name, spec.source) == (DEFAULT_MODEL_NAME, default_model_source())  # no hub look-up
    assert parse_model_arg("mini=bundled").name == "mini"
    config = config_from_args(["serve", "--model", "bundled", "--model", "v2=/models/v2"], env={})
    assert [(m.name, m.source) for m in config.models] == [
        (DEFAULT_MODEL_NAME, default_model_source()),
        ("v2", "/models/v2"),
    ]


def test_a_config_file_may_name_the_bundled_model(tmp_path: Path) -> None:
    from retrieval.cli import config_from_args
    from retrieval.config import DEFAULT_MODEL_NAME

    file = tmp_path / "c.json"
    file.write_text('{"models": [{"source": "bundled"}, {"source": "/m/ce", "name": "ce"}]}')
    config = config_from_args(["serve", "--config", str(file)], env={})
    assert [(m.served_name, m.source) for m in config.models] == [
        (DEFAULT_MODEL_NAME, default_model_source()),
        ("ce", "/m/ce"),
    ]
