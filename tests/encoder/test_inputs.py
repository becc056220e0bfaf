"""OpenAI content parts -> typed inputs (encoder/inputs.py): text and image parts, and the 400s for bad ones."""

from __future__ import annotations

from typing import Any

import pytest

from encoder.errors import InvalidInputError
from encoder.inputs import ImagePart, MultimodalInput, TextPart, content_input


def test_text_and_image_parts_keep_their_order() -> None:
    item = content_input(
        [
            {"type": "text", "text": "a"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
            {"type": "image_url", "image_url": "https://x/y.png"},
            {"type": "text", "text": "b"},
        ]
    )
    assert item == MultimodalInput(
        (TextPart("a"), ImagePart("data:image/png;base64,AA=="), ImagePart("https://x/y.png"), TextPart("b"))
    )
    assert not item.is_text_only and item.text(" ") == "a b"
    assert content_input([{"type": "text", "text": "only"}]).is_text_only


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([], r"^messages\[0\]: give at least one content part$"),
        (["text"], r"a content part must be an object with a `type`"),
        ([{"type": "audio"}], r"unsupported content part 'audio'; expected `text` or `image_url` parts"),
        ([{"type": "text", "text": 3}], r"unsupported content part 'text'"),
        ([{"type": "image_url", "image_url": {"url": ""}}], r"unsupported content part 'image_url'"),
        ([{"type": "image_url"}], r"unsupported content part 'image_url'"),
    ],
)
def test_bad_parts_are_400s_naming_the_field(parts: list[Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as err:
        content_input(parts, param="messages[0]")
    assert err.value.param == "messages[0]"
