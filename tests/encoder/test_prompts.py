"""Prompts and input checks (encoder/prompts.py): sentence-transformers' role choice, prefixes, typed 400s."""

from __future__ import annotations

import pytest

from encoder.errors import InvalidInputError
from encoder.inputs import ImagePart, MultimodalInput, TextPair, TextPart
from encoder.prompts import apply_prompt, check_inputs, role_prompt_names


def test_roles_pick_query_and_the_first_document_key_then_the_default() -> None:
    table = {"corpus": "c: ", "passage": "p: ", "document": "d: ", "query": "q: "}
    assert role_prompt_names(table, None) == {"query": "query", "document": "document"}
    assert role_prompt_names({"passage": "p: ", "corpus": "c: "}, None) == {"document": "passage"}
    assert role_prompt_names({"query": "q: ", "web": "w: "}, "web") == {"query": "query", "document": "web"}
    assert role_prompt_names({"query": "q: "}, "missing") == {"query": "query"}
    assert role_prompt_names({}, None) == {}


def test_apply_prompt_prefixes_text_only_and_rejects_unknown_names() -> None:
    pair = TextPair("a", "b")
    assert apply_prompt(["x", [1, 2], pair], "query", {"query": "q: "}) == ["q: x", [1, 2], pair]
    assert apply_prompt(["x"], None, {}) == ["x"]
    with pytest.raises(InvalidInputError, match=r"'doc' is not one of this model's prompts: \['query'\]") as err:
        apply_prompt(["x"], "doc", {"query": "q: "})
    assert err.value.param == "prompt_name"
    with pytest.raises(InvalidInputError, match=r"prompts: none"):
        apply_prompt(["x"], "doc", {})


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ([], r"Input must not be empty"),
        (["ok", ""], r"input\[1\] is an empty string"),
        ([[]], r"input\[0\] is an empty token list"),
        ([[1, 10]], r"input\[0\] has token ids outside the vocabulary \[0, 10\)"),
        ([[-1]], r"outside the vocabulary"),
        ([TextPair("q", "")], r"input\[0\] is a pair with an empty side"),
    ],
)
def test_check_inputs_rejects_empty_and_out_of_vocabulary(prompts: list[object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as err:
        check_inputs(prompts, vocab_size=10, architecture="BertModel")
    assert err.value.param == "input"


def test_check_inputs_turns_text_only_content_into_text_and_rejects_images() -> None:
    item = MultimodalInput((TextPart("a"), TextPart("b")))
    assert check_inputs([item, [0, 9], "t"], vocab_size=10, architecture="BertModel") == ["a\nb", [0, 9], "t"]
    image = MultimodalInput((TextPart("a"), ImagePart("data:image/png;base64,AA==")))
    with pytest.raises(InvalidInputError, match=r"MultiModalParam is not supported for BertModel") as err:
        check_inputs(["x", image], vocab_size=10, architecture="BertModel")
    assert err.value.param == "input[1]"
