"""Tokenisation with vLLM's truncation rules (encoder/tokenizer.py), against the Hugging Face tokenizer itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from encoder.errors import InputTooLongError, InvalidInputError, ModelLoadError
from encoder.tokenizer import TextTokenizer, load_hf_tokenizer


@pytest.fixture(scope="module")
def hf(tiny_store: Callable[[str], Path]) -> Any:
    return load_hf_tokenizer(tiny_store("bert_st_mean"), False)


TEXT = "the quick brown fox jumps over the lazy dog"


def test_truncation_values_follow_vllm(hf: Any) -> None:
    tok = TextTokenizer(hf, max_model_len=16)
    assert tok.resolve_truncation(None) is None and tok.resolve_truncation(-1) == 16 and tok.resolve_truncation(5) == 5
    for bad in (0, -2):
        with pytest.raises(InvalidInputError, match=r"must be -1 or a positive integer"):
            tok.resolve_truncation(bad)
    with pytest.raises(InvalidInputError) as err:
        tok.resolve_truncation(17)
    assert str(err.value) == (
        "truncate_prompt_tokens value (17) is greater than max_model_len (16). "
        "Please, select a smaller truncation size."
    )
    assert err.value.param == "truncate_prompt_tokens"


def test_right_keeps_the_first_tokens_and_left_the_last(hf: Any) -> None:
    tok = TextTokenizer(hf, max_model_len=64)
    full = hf(TEXT)["input_ids"]
    assert tok.encode([TEXT]) == [full] and len(full) > 6
    right, left = tok.encode([TEXT], truncate=6)[0], tok.encode([TEXT], truncate=6, side="left")[0]
    assert len(right) == len(left) == 6
    assert right[:5] == full[:5] and left[-5:] == full[-5:]  # special tokens stay at the ends
    assert tok.encode([TEXT], add_special_tokens=False) == [hf(TEXT, add_special_tokens=False)["input_ids"]]


def test_token_ids_pass_through_and_are_cut_by_side(hf: Any) -> None:
    tok = TextTokenizer(hf, max_model_len=4)
    ids = [5, 6, 7, 8, 9]
    assert tok.encode([ids, "a"], truncate=3) == [[5, 6, 7], hf("a")["input_ids"][:3]]
    assert tok.encode([ids], truncate=3, side="left") == [[7, 8, 9]]
    assert tok.encode([ids], check_length=False) == [ids]
    with pytest.raises(InputTooLongError, match=r"maximum context length is 4 tokens\. However, you requested 5"):
        tok.encode([ids])


def test_lower_casing_decode_and_token_strings(hf: Any) -> None:
    lower = TextTokenizer(hf, max_model_len=64, do_lower_case=True)
    assert lower.encode(["THE Fox"]) == [hf("the fox")["input_ids"]]
    ids = hf("quick fox", add_special_tokens=False)["input_ids"]
    assert lower.decode(ids) == hf.decode(ids) and lower.convert_ids_to_tokens(ids) == hf.convert_ids_to_tokens(ids)


def test_a_folder_without_a_tokenizer_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"cannot load a tokenizer from"):
        load_hf_tokenizer(tmp_path, False)
