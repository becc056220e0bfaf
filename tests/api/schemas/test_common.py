"""Shared request fields (api/schemas/common.py): prompt parsing, token options, removed/unsupported fields."""

from __future__ import annotations

from typing import Any, cast

import msgspec
import pytest

from api.schemas.common import BasicRequest, EncodingRequest, PromptRequest, new_id, parse_prompts, usage
from encoder import Engine, InvalidInputError, TokenOptions


@pytest.mark.parametrize(
    ("value", "prompts"),
    [
        ("one", ["one"]),
        (["a", "b"], ["a", "b"]),
        ([1, 2, 3], [[1, 2, 3]]),
        ([[1], [2, 3]], [[1], [2, 3]]),
    ],
)
def test_the_four_input_forms(value: Any, prompts: list[Any]) -> None:
    assert parse_prompts(value) == prompts


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (3, r"must be a string, a list of strings"),
        ({"a": 1}, r"must be a string, a list of strings"),
        ([], r"`text_1` must not be empty"),
        (["a", 1], r"mixes types"),
        ([True, 1], r"mixes types"),  # booleans are not token ids
        ([[1], ["a"]], r"mixes types"),
    ],
)
def test_other_shapes_are_400s_naming_the_field(value: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as err:
        parse_prompts(value, "text_1")
    assert err.value.param == "text_1"


def test_token_options_default_special_tokens_by_form() -> None:
    plain = msgspec.json.decode(
        b'{"input": "x", "truncate_prompt_tokens": 8, "truncation_side": "left"}', type=PromptRequest
    )
    assert plain.options() == TokenOptions(8, "left", True, None)
    chat = PromptRequest(messages=[{"role": "user", "content": "x"}], prompt_name="query")
    assert chat.is_chat and chat.options() == TokenOptions(None, None, False, "query")
    forced = PromptRequest(messages=[], add_special_tokens=True)
    assert forced.options().add_special_tokens is True


def test_removed_and_unsupported_fields_are_400s() -> None:
    with pytest.raises(InvalidInputError, match=r"`normalize` was removed; use `use_activation`") as err:
        BasicRequest(normalize=False).token_options()
    assert err.value.param == "normalize"
    with pytest.raises(InvalidInputError, match=r"priority must be 0"):
        BasicRequest(priority=1).check_common()


def test_exactly_one_of_input_or_messages() -> None:
    engine = cast(Engine, object())  # never reached: the check comes first
    for request in (PromptRequest(), PromptRequest(input="x", messages=[])):
        with pytest.raises(InvalidInputError, match=r"Give exactly one of `input` or `messages`"):
            request.prompts(engine)
    assert PromptRequest(input=[5, 6]).prompts(engine) == [[5, 6]]


def test_encoding_defaults_usage_and_ids() -> None:
    request = msgspec.json.decode(b'{"input": "x", "unknown": 1}', type=EncodingRequest)
    assert (request.encoding_format, request.embed_dtype, request.endianness) == ("float", "float32", "native")
    assert usage(7) == msgspec.convert({"prompt_tokens": 7, "total_tokens": 7}, type(usage(0)))
    a, b = new_id("embd"), new_id("embd")
    assert a.startswith("embd-") and len(a) == 5 + 32 and a != b
