"""Render OpenAI chat `messages` into one prompt with the model's chat template (vLLM's chat request form)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from encoder.errors import InvalidInputError

__all__ = ["render_chat"]


def _check_text_only(messages: Sequence[Any]) -> None:
    """Text parts only: image/audio parts need a multimodal model, which this engine does not serve."""
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message:
            raise InvalidInputError(f"messages[{i}] must be an object with a `role`", param="messages")
        content = message.get("content")
        if isinstance(content, list):
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
) -> str:
    """The prompt text `tokenizer.apply_chat_template` renders; template problems are the client's (400)."""
    if not isinstance(messages, list) or not messages:
        raise InvalidInputError("`messages` must be a non-empty list of chat messages", param="messages")
    if add_generation_prompt and continue_final_message:
        raise InvalidInputError(
            "Cannot set both `continue_final_message` and `add_generation_prompt` to True.",
            param="continue_final_message",
        )
    _check_text_only(messages)
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
