"""`ModelSpec.compile` (encoder/compiled.py): compiled parity with eager, the eager fallback, bucketed widths."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import encoder.compiled as compiled_module
from encoder import Engine, ModelSpec, PoolingParams
from encoder.compiled import CompiledForward


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = ["late", "interaction", "dense", "vector", "search", "token", "model", "query"]
    return [" ".join(rng.choices(words, k=rng.randint(1, 40))) for _ in range(n)]


@pytest.fixture(scope="module")
def model(tiny_store: Callable[[str], Path]) -> Path:
    return tiny_store("bert_st_mean")


def test_compiled_tiny_bert_equals_eager(model: Path) -> None:
    texts = _texts(24, 1)
    eager = Engine.load(ModelSpec(source=str(model)))
    fast = Engine.load(ModelSpec(source=str(model), compile=True, max_batch_tokens=256))
    assert not eager.compiled and fast.compiled and not fast.bucketed  # CPU: dynamic shapes, no width buckets
    want = torch.stack(eager.encode_sync(texts, PoolingParams()).outputs)
    # The CPU's vector ISAs are taken from its flags instead of being probed by building test programs,
    # which alone costs ~15 s of a cold compile here; the kernels compiled are the same.
    with torch._inductor.config.patch({"cpp.vec_isa_ok": True}):
        got = torch.stack(fast.encode_sync(texts, PoolingParams()).outputs)  # several batch shapes
    assert fast.compiled  # it compiled and ran: no fallback to eager
    assert float(F.cosine_similarity(got, want).min()) >= 1 - 1e-5


class _Boom(Exception):
    pass


def test_a_failed_compile_falls_back_to_eager_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    compiles: list[object] = []

    def broken_compile(fn: Callable[[torch.Tensor], torch.Tensor], **options: object) -> object:
        compiles.append(options)

        def run(batch: torch.Tensor) -> torch.Tensor:
            raise _Boom("no backend here")

        return run

    monkeypatch.setattr(compiled_module.torch, "compile", broken_compile)
    forward = CompiledForward(lambda x: x * 2, "tiny")
    with caplog.at_level(logging.WARNING, logger="encoder.compiled"):
        assert forward(torch.ones(2)).tolist() == [2.0, 2.0]  # eager answered
        assert forward(torch.ones(1)).tolist() == [2.0]  # eager, without compiling again
    assert compiles == [{"dynamic": True}] and not forward.active
    assert forward.failed == "_Boom: no backend here"
    assert [r.getMessage() for r in caplog.records if "torch.compile failed" in r.getMessage()] == [
        "torch.compile failed for model tiny; running it eager from now on (_Boom: no backend here)"
    ]


def test_an_input_that_fails_eager_too_keeps_the_compiled_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def eager(batch: torch.Tensor) -> torch.Tensor:
        if batch.numel() == 0:
            raise _Boom("empty batch")
        return batch + 1

    monkeypatch.setattr(compiled_module.torch, "compile", lambda fn, **_: fn)  # "compiled" = eager itself
    forward = CompiledForward(eager, "tiny")
    with pytest.raises(_Boom, match="empty batch"):
        forward(torch.ones(0))
    assert forward.active and forward(torch.zeros(1)).tolist() == [1.0]


def test_bucketed_widths_give_the_same_outputs(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts(20, 2)
    engine = Engine.load(ModelSpec(source=str(model), max_batch_tokens=512))
    want = [engine.encode_sync(texts, PoolingParams(task=t)).outputs for t in ("embed", "token_embed")]
    monkeypatch.setattr(Engine, "bucketed", property(lambda self: True))  # what compile on CUDA turns on
    widths: list[int] = []
    run_collated = engine._run_collated

    def spy(batch, params):  # type: ignore[no-untyped-def]
        widths.append(batch.input_ids.shape[1])
        return run_collated(batch, params)

    monkeypatch.setattr(engine, "_run_collated", spy)
    got = [engine.encode_sync(texts, PoolingParams(task=t)).outputs for t in ("embed", "token_embed")]
    assert widths and all(w == 64 for w in widths)  # every text is shorter than 64 tokens (max_model_len 64)
    for a_rows, b_rows in zip(want, got, strict=True):
        for a, b in zip(a_rows, b_rows, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
