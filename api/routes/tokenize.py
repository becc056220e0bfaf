"""`POST /tokenize` and `POST /detokenize` with vLLM's fields."""

from __future__ import annotations

import asyncio

from litestar import post
from msgspec import UNSET

from api.errors import MODEL_ERRORS, error_responses
from api.schemas.tokenize import DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse
from encoder import Engine, InvalidInputError
from retrieval import ModelRegistry

__all__ = ["create_detokenize", "create_tokenize", "detokenize_text", "tokenize_text"]


def _chat_prompt(engine: Engine, data: TokenizeRequest) -> str:
    """Render `messages` with the chat template (a missing or broken template is a 400)."""
    generation = True if data.add_generation_prompt is UNSET else data.add_generation_prompt
    if data.continue_final_message and generation and data.add_generation_prompt is not UNSET:
        raise InvalidInputError(
            "Cannot set both `continue_final_message` and `add_generation_prompt` to True.",
            param="continue_final_message",
        )
    return engine.render_chat(
        data.messages,
        add_generation_prompt=generation and not data.continue_final_message,
        continue_final_message=data.continue_final_message,
        chat_template=data.chat_template,
        chat_template_kwargs=data.chat_template_kwargs,
    )


def tokenize_text(engine: Engine, data: TokenizeRequest) -> TokenizeResponse:
    """Token ids (and strings) of `prompt` or of the rendered `messages`; not length-checked."""
    if (data.prompt is UNSET) == (data.messages is UNSET):
        raise InvalidInputError("Give exactly one of `prompt` or `messages`", param="prompt")
    chat = data.messages is not UNSET
    special = (not chat) if data.add_special_tokens is UNSET else data.add_special_tokens
    text = _chat_prompt(engine, data) if chat else str(data.prompt)
    ids = engine.tokenize(text, add_special_tokens=special)
    strs = engine.token_strings(ids) if data.return_token_strs else None
    return TokenizeResponse(count=len(ids), max_model_len=engine.max_model_len, tokens=ids, token_strs=strs)


def detokenize_text(engine: Engine, data: DetokenizeRequest) -> DetokenizeResponse:
    return DetokenizeResponse(engine.detokenize(data.tokens))


@post(
    "/tokenize",
    status_code=200,
    summary="Tokenise a prompt or chat messages (vLLM compatible)",
    responses=error_responses(*MODEL_ERRORS),
)
async def create_tokenize(data: TokenizeRequest, registry: ModelRegistry) -> TokenizeResponse:
    return await asyncio.to_thread(tokenize_text, registry.get(data.model), data)


@post(
    "/detokenize",
    status_code=200,
    summary="Decode token ids (vLLM compatible)",
    responses=error_responses(*MODEL_ERRORS),
)
async def create_detokenize(data: DetokenizeRequest, registry: ModelRegistry) -> DetokenizeResponse:
    return await asyncio.to_thread(detokenize_text, registry.get(data.model), data)
