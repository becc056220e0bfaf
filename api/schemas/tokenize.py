"""`POST /tokenize` and `POST /detokenize` (vLLM's TokenizeCompletionRequest / TokenizeChatRequest)."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

__all__ = ["DetokenizeRequest", "DetokenizeResponse", "TokenizeRequest", "TokenizeResponse"]


class TokenizeRequest(msgspec.Struct, kw_only=True):
    """Either `prompt` (completion form) or `messages` (chat form, rendered with the chat template)."""

    model: str | None = None  # served model name; None = the default model
    prompt: str | UnsetType = UNSET  # text to tokenise
    messages: list[dict[str, Any]] | UnsetType = UNSET  # OpenAI chat messages
    add_special_tokens: bool | UnsetType = UNSET  # default True for `prompt`, False for `messages`
    add_generation_prompt: bool | UnsetType = UNSET  # chat: append the assistant header (default True)
    continue_final_message: bool = False  # chat: leave the last message open
    return_token_strs: bool | None = False  # also return each token as a string
    chat_template: str | None = None  # chat: a Jinja template overriding the tokenizer's
    chat_template_kwargs: dict[str, Any] | None = None  # chat: extra template variables


class TokenizeResponse(msgspec.Struct, kw_only=True):
    count: int  # number of tokens
    max_model_len: int  # the model's token limit
    tokens: list[int]  # token ids
    token_strs: list[str] | None = None  # token strings, when asked for


class DetokenizeRequest(msgspec.Struct, kw_only=True):
    model: str | None = None  # served model name; None = the default model
    tokens: list[int]  # token ids to decode


class DetokenizeResponse(msgspec.Struct):
    prompt: str  # decoded text
