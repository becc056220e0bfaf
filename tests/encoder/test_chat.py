"""Chat rendering (encoder/chat.py): message checks and template errors as 400s; arguments reach the template."""

from __future__ import annotations

from typing import Any

import pytest

from encoder.chat import render_chat
from encoder.errors import InvalidInputError


class _Tokenizer:
    """Records what `apply_chat_template` got; renders `role: content` lines, or fails like a missing template."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail  # raise as transformers does without a template
        self.kwargs: dict[str, Any] = {}  # the last call's keyword arguments

    def apply_chat_template(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        if self.fail:
            raise ValueError("tokenizer.chat_template is not set")
        self.kwargs = kwargs
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def test_renders_with_every_option_passed_on() -> None:
    tok = _Tokenizer()
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": "x"}]}]
    out = render_chat(tok, messages, continue_final_message=True, chat_template="T", chat_template_kwargs={"a": 1})
    assert out == "user: hi\nassistant: [{'type': 'text', 'text': 'x'}]"
    assert tok.kwargs == {
        "tokenize": False,
        "add_generation_prompt": False,
        "continue_final_message": True,
        "chat_template": "T",
        "a": 1,
    }


@pytest.mark.parametrize(
    ("messages", "kwargs", "message", "param"),
    [
        ([], {}, r"must be a non-empty list", "messages"),
        ("hi", {}, r"must be a non-empty list", "messages"),
        (["hi"], {}, r"messages\[0\] must be an object with a `role`", "messages"),
        ([{"content": "x"}], {}, r"must be an object with a `role`", "messages"),
        (
            [{"role": "user", "content": [{"type": "text"}, {"type": "image_url"}]}],
            {},
            r"messages\[0\] has content parts of type \['image_url'\]; only text parts",
            "messages",
        ),
        (
            [{"role": "user", "content": "x"}],
            {"add_generation_prompt": True, "continue_final_message": True},
            r"Cannot set both `continue_final_message` and `add_generation_prompt` to True\.",
            "continue_final_message",
        ),
    ],
)
def test_bad_requests_are_400s(messages: Any, kwargs: dict[str, Any], message: str, param: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as err:
        render_chat(_Tokenizer(), messages, **kwargs)
    assert err.value.param == param


def test_a_template_failure_is_the_clients() -> None:
    with pytest.raises(InvalidInputError, match=r"cannot apply the chat template: tokenizer.chat_template is not set"):
        render_chat(_Tokenizer(fail=True), [{"role": "user", "content": "x"}])
