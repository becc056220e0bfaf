"""The engine's tokenizer operations (encoder/text.py): counts, spans, cuts and id checks vs the HF tokenizer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from encoder.errors import InvalidInputError
from encoder.text import EngineText
from encoder.tokenizer import TextTokenizer, load_hf_tokenizer


@pytest.fixture(scope="module")
def hf(tiny_store: Callable[[str], Path]) -> Any:
    return load_hf_tokenizer(tiny_store("bert_st_mean"), False)


@pytest.fixture
def text(hf: Any) -> EngineText:
    return EngineText(TextTokenizer(hf, max_model_len=8), max_model_len=8)


def test_sizes_and_counts(text: EngineText, hf: Any) -> None:
    assert text.max_model_len == 8 and text.vocab_size == len(hf) and text.num_special_tokens == 2  # [CLS] [SEP]
    long = "the quick brown fox jumps over the lazy dog again and again"
    assert text.count_tokens([long, "fox"]) == [len(hf(long)["input_ids"]), len(hf("fox")["input_ids"])]
    assert text.tokenize(long) == hf(long)["input_ids"]  # not cut, not length-checked
    assert text.count_tokens(["fox"], add_special_tokens=False) == [len(hf("fox")["input_ids"]) - 2]


def test_spans_and_cuts_land_on_token_boundaries(text: EngineText, hf: Any) -> None:
    s = "quick brown fox"
    spans = text.token_spans(s)
    assert [s[a:b] for a, b in spans] == hf.convert_ids_to_tokens(hf(s, add_special_tokens=False)["input_ids"])
    assert text.cut_to_tokens([s, "fox"], 2) == [s[: spans[1][1]], "fox"]


def test_ids_outside_the_vocabulary_are_400s(text: EngineText, hf: Any) -> None:
    ids = hf("fox", add_special_tokens=False)["input_ids"]
    assert text.detokenize(ids) == hf.decode(ids) and text.token_strings(ids) == hf.convert_ids_to_tokens(ids)
    with pytest.raises(InvalidInputError, match=r"token ids \[-1\] are outside the vocabulary") as err:
        text.detokenize([-1, *ids])
    assert err.value.param == "tokens"
    with pytest.raises(InvalidInputError, match=rf"\[{len(hf)}\] are outside the vocabulary \[0, {len(hf)}\)"):
        text.token_strings([len(hf)])
