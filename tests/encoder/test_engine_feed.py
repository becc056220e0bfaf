"""How Engine feeds the model: windowed, pipelined `run_sync` and pooled tokenisation give the plain results."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import encoder.engine as engine_module
from encoder import EncodeCall, EncodeResult, Engine, InvalidInputError, ModelSpec, PoolingParams, TokenOptions


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = ["late", "interaction", "dense", "vector", "search", "token", "model", "query"]
    return [" ".join(rng.choices(words, k=rng.randint(1, 30))) for _ in range(n)]


def _calls(texts: list[str]) -> list[EncodeCall]:
    return [
        EncodeCall(texts[:5], PoolingParams(task="embed")),
        EncodeCall(texts[5:9], PoolingParams(task="token_embed"), TokenOptions(truncate_prompt_tokens=6)),
        EncodeCall(texts[9:], PoolingParams(task="embed")),
    ]


def _same(a: list[EncodeResult], b: list[EncodeResult]) -> None:
    assert [r.task for r in a] == [r.task for r in b]
    for x, y in zip(a, b, strict=True):
        assert x.prompt_token_ids == y.prompt_token_ids
        assert len(x.outputs) == len(y.outputs)
        for u, v in zip(x.outputs, y.outputs, strict=True):
            torch.testing.assert_close(u, v, atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def model(tiny_store: Callable[[str], Path]) -> Path:
    return tiny_store("bert_st_mean")


def test_windowed_pipelined_run_sync_equals_the_plain_one(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts(40, 1)
    plain = Engine.load(ModelSpec(source=str(model), pipeline=False))
    want = plain.run_sync(_calls(texts))
    assert not plain.pipelined and plain.tokenize_workers == 0  # CPU defaults
    monkeypatch.setattr(engine_module, "_WINDOW", 7)  # windows cut across calls
    piped = Engine.load(ModelSpec(source=str(model), pipeline=True, max_batch_tokens=64))
    assert piped.pipelined
    _same(piped.run_sync(_calls(texts)), want)
    _same(plain.run_sync(_calls(texts)), want)
    by_one = [plain.encode_sync([t], PoolingParams(task="embed")).outputs[0] for t in texts[:5]]
    for u, v in zip(by_one, want[0].outputs, strict=True):
        torch.testing.assert_close(u, v, atol=1e-5, rtol=1e-5)


def test_pipelined_errors_reach_the_caller(model: Path) -> None:
    piped = Engine.load(ModelSpec(source=str(model), pipeline=True, max_model_len=8))
    with pytest.raises(InvalidInputError):
        piped.run_sync([EncodeCall(["ok", "a b c d e f g h i j k l m n"], PoolingParams(task="embed"))])


def test_engine_with_a_tokenisation_pool_matches_one_without(model: Path) -> None:
    texts = _texts(1100, 2)  # more than one pool chunk (1024 texts)
    plain = Engine.load(ModelSpec(source=str(model)))
    pooled = Engine.load(ModelSpec(source=str(model), tokenize_workers=2, tokenize_backend="thread"))
    try:
        assert pooled.tokenize_workers == 2
        params, opts = pooled.resolve_params(PoolingParams(task="embed")), TokenOptions(truncate_prompt_tokens=12)
        assert [it.input_ids for it in pooled.prepare(texts, params, opts)] == [
            it.input_ids for it in plain.prepare(texts, params, opts)
        ]
    finally:
        pooled.close()
