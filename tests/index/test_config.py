"""Index config structs (index/config.py): checks on construction and the manifest round trip."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from index.config import BM25Config, DenseConfig, MultiVectorConfig, config_from_meta, config_to_meta
from index.errors import IndexConfigError


@pytest.mark.parametrize(
    ("cls", "kwargs", "param"),
    [
        (DenseConfig, {"kind": "factory"}, "factory"),
        (DenseConfig, {"compact_ratio": 0.0}, "compact_ratio"),
        (DenseConfig, {"compact_ratio": 1.5}, "compact_ratio"),
        (DenseConfig, {"retrain_growth": 1.0}, "retrain_growth"),
        (MultiVectorConfig, {"nprobe": 0}, "nprobe"),
        (MultiVectorConfig, {"token_k": 0}, "token_k"),
        (MultiVectorConfig, {"rerank": 0}, "rerank"),
    ],
)
def test_bad_settings_are_typed_errors(cls: type[msgspec.Struct], kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(IndexConfigError) as err:
        cls(**kwargs)
    assert err.value.param == param


@pytest.mark.parametrize(
    "config",
    [DenseConfig(kind="ivf_pq", nlist=16, pq_m=4, metric="cosine"), MultiVectorConfig(token_k=8), BM25Config(k1=1.2)],
)
def test_meta_round_trip(config: msgspec.Struct) -> None:
    meta = config_to_meta(config)
    assert isinstance(meta, dict) and msgspec.json.decode(msgspec.json.encode(meta)) == meta
    assert config_from_meta(type(config), meta) == config


def test_a_bad_saved_config_names_the_struct() -> None:
    with pytest.raises(IndexConfigError) as err:
        config_from_meta(DenseConfig, {"kind": "nope"})
    assert err.value.param == "DenseConfig" and err.value.expected == "a valid saved config"
    with pytest.raises(IndexConfigError, match=r"compact_ratio"):
        config_from_meta(DenseConfig, {"compact_ratio": 2.0})
