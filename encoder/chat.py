"""Render OpenAI chat `messages` into one prompt with the model's chat template (vLLM's chat request form)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from encoder.errors import InvalidInputError
from encoder.inputs import ImagePart, MultimodalInput, TextPart, content_input

__all__ = ["chat_images", "render_chat", "split_rendered"]


def chat_images(messages: Sequence[Any]) -> list[ImagePart]:
    """The `image_url` parts of chat `messages`, in order (other parts are checked by `content_input`)."""
    images: list[ImagePart] = []
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):
            parsed = content_input(content, f"messages[{i}].content")
            images.extend(p for p in parsed.parts if isinstance(p, ImagePart))
    return images


def split_rendered(rendered: str, images: Sequence[ImagePart], block: str) -> MultimodalInput:
    """A rendered chat prompt whose image placeholders are `block` -> parts, each `block` becoming its image.

    >>> split_rendered("a<I>b", [ImagePart("data:,x")], "<I>").parts[1]
    ImagePart(url='data:,x')
    """
    pieces = rendered.split(block)
    if len(pieces) - 1 != len(images):
        raise InvalidInputError(
            f"the chat template rendered {len(pieces) - 1} image placeholders for {len(images)} images",
            param="messages",
            received=len(pieces) - 1,
            allowed=len(images),
        )
    parts: list[TextPart | ImagePart] = []
    for k, piece in enumerate(pieces):
        if piece:
            parts.append(TextPart(piece))
        if k < len(images):
            parts.append(images[k])
    return MultimodalInput(tuple(parts))


def _check_messages(messages: Sequence[Any], allow_images: bool) -> None:
    """Every message has a `role`; text parts only unless the model takes images."""
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message:
            raise InvalidInputError(f"messages[{i}] must be an object with a `role`", param="messages")
        content = message.get("content")
        if isinstance(content, list) and not allow_images:
            kinds = {str(part.get("type")) if isinstance(part, Mapping) else "?" for part in content}
            if kinds - {"text"}:
                raise InvalidInputError(
                    f"messages[{i}] has content parts of type {sorted(kinds - {'text'})}; "
                    "only text parts are supported by this model",
                    param="messages",
                )


def render_chat(
    tokenizer: Any,
    messages: Any,
    *,
    add_generation_prompt: bool = False,
    continue_final_message: bool = False,
    chat_template: str | None = None,
    chat_template_kwargs: Mapping[str, Any] | None = None,
    allow_images: bool = False,
) -> str:
    """The prompt text `tokenizer.apply_chat_template` renders; template problems are the client's (400).

    `allow_images` (multimodal models) lets `image_url` parts through to the template, which renders each
    as the model's image placeholder.
    """
    if not isinstance(messages, list) or not messages:
        raise InvalidInputError("`messages` must be a non-empty list of chat messages", param="messages")
    if add_generation_prompt and continue_final_message:
        raise InvalidInputError(
            "Cannot set both `continue_final_message` and `add_generation_prompt` to True.",
            param="continue_final_message",
        )
    _check_messages(messages, allow_images)
    try:
        return str(
            tokenizer.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                continue_final_message=continue_final_message,
                chat_template=chat_template,
                **dict(chat_template_kwargs or {}),
            )
        )
    except Exception as exc:  # a missing template or a Jinja error
        raise InvalidInputError(f"cannot apply the chat template: {exc}", param="messages") from exc
