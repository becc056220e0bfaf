"""Fields shared by vLLM's pooling requests (its mixins) and the usage block of responses."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import msgspec

from encoder import Engine, InvalidInputError, MultimodalInput, Prompt, TokenOptions

__all__ = [
    "BasicRequest",
    "EmbedDType",
    "EncodingFormat",
    "EncodingRequest",
    "PromptRequest",
    "UsageInfo",
    "new_id",
    "now",
    "parse_prompts",
    "usage",
]

EncodingFormat = Literal["float", "base64", "bytes"]
EmbedDType = Literal["float32", "float16", "bfloat16", "fp8_e4m3", "fp8_e5m2"]


class BasicRequest(msgspec.Struct, kw_only=True):
    """vLLM's PoolingBasicRequestMixin (+ add_special_tokens). Unknown fields are ignored."""

    model: str | None = None  # served model name; None = the default model
    user: str | None = None  # end-user id, recorded only
    truncate_prompt_tokens: int | None = None  # -1 = model max; None = refuse over-long input
    truncation_side: Literal["left", "right"] | None = None  # which end truncation keeps
    request_id: str | None = None  # echoed in logs
    priority: int = 0  # only 0 is supported (no priority scheduling)
    add_special_tokens: bool | msgspec.UnsetType = msgspec.UNSET  # add [CLS]/[SEP]; default True, False for chat
    normalize: Any = msgspec.UNSET  # removed by vLLM; sending it is a 400
    prompt_name: str | None = None  # extension: a key of the model's sentence-transformers `prompts` to prepend

    def token_options(self, chat: bool = False) -> TokenOptions:
        """Tokenisation options; special tokens default on, off for the chat form (the template adds them)."""
        self.check_common()
        special = (not chat) if self.add_special_tokens is msgspec.UNSET else self.add_special_tokens
        return TokenOptions(self.truncate_prompt_tokens, self.truncation_side, special, self.prompt_name)

    def check_common(self) -> None:
        if self.normalize is not msgspec.UNSET:
            raise InvalidInputError(
                "Parameter `normalize` was removed; use `use_activation` instead.", param="normalize"
            )
        if self.priority != 0:
            raise InvalidInputError("Priority scheduling is not enabled; priority must be 0", param="priority")


class PromptRequest(BasicRequest, kw_only=True):
    """Either `input` (vLLM's completion form) or `messages` (its chat form, rendered by the chat template)."""

    input: Any = msgspec.UNSET  # str | list[str] | list[int] | list[list[int]]
    messages: Any = msgspec.UNSET  # OpenAI chat messages (text content only)
    add_generation_prompt: bool = False  # chat: append the assistant header
    continue_final_message: bool = False  # chat: leave the last message open
    chat_template: str | None = None  # chat: a Jinja template overriding the tokenizer's
    chat_template_kwargs: dict[str, Any] | None = None  # chat: extra template variables

    @property
    def is_chat(self) -> bool:
        return self.messages is not msgspec.UNSET

    def prompts(self, engine: Engine) -> list[Prompt | MultimodalInput]:
        """The prompts to encode: `input` parsed, or `messages` rendered into one prompt (with its images,
        for a model that takes them)."""
        if (self.input is msgspec.UNSET) == (self.messages is msgspec.UNSET):
            raise InvalidInputError("Give exactly one of `input` or `messages`", param="input")
        if not self.is_chat:
            return parse_prompts(self.input)
        return [
            engine.render_chat_input(
                self.messages,
                add_generation_prompt=self.add_generation_prompt,
                continue_final_message=self.continue_final_message,
                chat_template=self.chat_template,
                chat_template_kwargs=self.chat_template_kwargs,
            )
        ]

    def options(self) -> TokenOptions:
        return self.token_options(chat=self.is_chat)


class EncodingRequest(PromptRequest, kw_only=True):
    """vLLM's EncodingRequestMixin: how vectors travel back."""

    encoding_format: EncodingFormat = "float"  # float list, base64 of raw bytes, or an octet stream
    embed_dtype: EmbedDType = "float32"  # element type for base64/bytes
    endianness: Literal["native", "big", "little"] = "native"  # byte order for base64/bytes


class UsageInfo(msgspec.Struct):
    prompt_tokens: int = 0  # tokens read
    total_tokens: int = 0  # tokens read + generated
    completion_tokens: int | None = 0  # always 0 for pooling
    prompt_tokens_details: dict[str, int] | None = None  # cached tokens (unused)


def usage(prompt_tokens: int) -> UsageInfo:
    return UsageInfo(prompt_tokens=prompt_tokens, total_tokens=prompt_tokens)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def parse_prompts(value: object, field: str = "input") -> list[Prompt]:
    """`str | list[str] | list[int] | list[list[int]]` -> prompts; anything else is a 400 naming `field`."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise InvalidInputError(
            f"`{field}` must be a string, a list of strings, a list of token ids or a list of token-id lists",
            param=field,
        )
    if not value:
        raise InvalidInputError(f"`{field}` must not be empty", param=field)
    if all(isinstance(v, str) for v in value):
        return list(value)
    if all(_is_int(v) for v in value):
        return [list(value)]
    if all(isinstance(v, list) and all(_is_int(t) for t in v) for v in value):
        return [list(v) for v in value]
    raise InvalidInputError(
        f"`{field}` mixes types: give strings only, token ids only, or lists of token ids only", param=field
    )
