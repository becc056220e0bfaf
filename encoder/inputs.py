"""Typed encoder inputs: text, token ids, a text pair, and a multimodal item made of content parts.

The layers above build these once from whatever their wire format is; raw content-part dicts do not travel
further down. An image part is defined here so that a multimodal processor fills it in without a second path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from encoder.errors import InvalidInputError

__all__ = ["EncoderInput", "ImagePart", "MultimodalInput", "Prompt", "TextPair", "TextPart", "content_input"]

Prompt = str | list[int]
"""A text, or token ids the caller tokenised already."""


@dataclass(frozen=True, slots=True)
class TextPair:
    """A cross-encoder input: two texts tokenised together (`tokenizer(text, text_pair)`)."""

    text: str  # first segment (the query)
    text_pair: str  # second segment (the document)


@dataclass(frozen=True, slots=True)
class TextPart:
    """A text content part (OpenAI `{"type": "text", "text": ...}`)."""

    text: str  # the text


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image content part (OpenAI `{"type": "image_url", "image_url": {"url": ...}}`).

    Either `url` (untrusted: decoded by the encoder under the service's image limits) or `image` (an already
    decoded RGB `PIL.Image.Image` made by trusted code, such as the PDF page renderer) is set.
    """

    url: str = ""  # a `data:` URL or an http(s) URL; empty when `image` is given
    image: Any = field(default=None, compare=False, repr=False)  # a decoded PIL image from trusted code, or None


@dataclass(frozen=True, slots=True)
class MultimodalInput:
    """One item made of content parts, in order."""

    parts: tuple[TextPart | ImagePart, ...]  # at least one part

    @property
    def is_text_only(self) -> bool:
        return all(isinstance(p, TextPart) for p in self.parts)

    def text(self, joiner: str = "\n") -> str:
        """The text parts joined (vLLM joins a text-only content list with newlines)."""
        return joiner.join(p.text for p in self.parts if isinstance(p, TextPart))


EncoderInput = str | list[int] | TextPair | MultimodalInput
"""Anything the engine encodes."""


def _part(raw: Any, param: str) -> TextPart | ImagePart:
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"{param}: a content part must be an object with a `type`", param=param)
    kind = raw.get("type")
    if kind == "text" and isinstance(raw.get("text"), str):
        return TextPart(raw["text"])
    if kind == "image_url":
        image = raw.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        if isinstance(url, str) and url:
            return ImagePart(url)
    raise InvalidInputError(
        f"{param}: unsupported content part {str(kind)!r}; expected `text` or `image_url` parts", param=param
    )


def content_input(parts: Sequence[Any], param: str = "content") -> MultimodalInput:
    """OpenAI content parts -> a :class:`MultimodalInput`; a bad part is a 400 naming `param`.

    >>> content_input([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]).text()
    'a\\nb'
    """
    if not parts:
        raise InvalidInputError(f"{param}: give at least one content part", param=param)
    return MultimodalInput(tuple(_part(p, param) for p in parts))
