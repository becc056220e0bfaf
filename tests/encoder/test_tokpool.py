"""Packed parallel tokenisation (encoder/tokpool.py) against the Hugging Face tokenizer itself."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from transformers import AutoTokenizer

from encoder.tokenizer import TextTokenizer
from encoder.tokpool import PackedIds, TokenizePool


@pytest.fixture(scope="module")
def hf(minilm_path: Path) -> object:
    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def texts(minilm_path: Path) -> list[str]:
    words = [w for w in (minilm_path / "vocab.txt").read_text().split() if w.isalpha()]
    rng = random.Random(7)
    return [" ".join(rng.choices(words, k=rng.randint(0, 40))) for _ in range(300)]


@pytest.fixture(scope="module", params=["thread", "process"])
def pool(request: pytest.FixtureRequest, hf: object) -> Iterator[TokenizePool]:
    workers = 1 if request.param == "process" else 2  # one spawned worker exercises the whole process path
    made = TokenizePool(hf.backend_tokenizer.to_str(), request.param, workers=workers, chunk=64)  # type: ignore[attr-defined]
    yield made
    made.close()


def _reference(hf: object, texts: list[str], **kwargs: object) -> list[list[int]]:
    return [list(x) for x in hf(texts, return_attention_mask=False, **kwargs)["input_ids"]]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("truncate", "side", "specials"), [(None, "right", True), (9, "right", True), (7, "left", False)]
)
def test_pool_equals_the_hf_tokenizer(
    pool: TokenizePool, hf: object, texts: list[str], truncate: int | None, side: str, specials: bool
) -> None:
    hf.truncation_side = side  # type: ignore[attr-defined]
    kwargs: dict[str, object] = {"add_special_tokens": specials}
    if truncate is not None:
        kwargs |= {"truncation": True, "max_length": truncate}
    want = _reference(hf, texts, **kwargs)
    packed = pool.encode(texts, add_special_tokens=specials, truncate=truncate, side=side)  # type: ignore[arg-type]
    assert packed.ids.dtype == np.int32 and packed.lengths.tolist() == [len(x) for x in want]
    assert packed.to_lists() == want
    hf.truncation_side = "right"  # type: ignore[attr-defined]


def test_small_batches_run_inline_and_match(pool: TokenizePool, hf: object, texts: list[str]) -> None:
    assert pool.encode(texts[:5]).to_lists() == _reference(hf, texts[:5])
    assert pool.encode([]).to_lists() == []


def test_packed_concat_keeps_order() -> None:
    a = PackedIds(np.array([1, 2], np.int32), np.array([2]))
    b = PackedIds(np.array([3], np.int32), np.array([0, 1]))
    assert PackedIds.concat([a, b]).to_lists() == [[1, 2], [], [3]]
    assert PackedIds.concat([]).to_lists() == []


def test_text_tokenizer_uses_the_pool_for_large_batches(hf: object, texts: list[str]) -> None:
    plain = TextTokenizer(hf, max_model_len=256)
    pooled = TextTokenizer(hf, max_model_len=256)
    pool = TokenizePool(hf.backend_tokenizer.to_str(), "thread", workers=2, chunk=32)  # type: ignore[attr-defined]
    pooled.attach_pool(pool)
    calls: list[int] = []
    original = pool.encode

    def counted(batch: Any, **kwargs: Any) -> PackedIds:
        calls.append(len(batch))
        return original(batch, **kwargs)

    pool.encode = counted  # type: ignore[method-assign,assignment]
    try:
        for kwargs in ({}, {"truncate": 12, "side": "left"}, {"truncate": 12}, {"add_special_tokens": False}):
            assert pooled.encode(texts, **kwargs) == plain.encode(texts, **kwargs)
        assert pooled.encode(texts[:3]) == plain.encode(texts[:3])
        assert calls == [len(texts)] * 4
    finally:
        pool.close()
