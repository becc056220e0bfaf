"""Input checks and sentence-transformers prompts, decided in one place.

Prompts follow sentence-transformers: `prompt_name` picks a key of the model's `prompts`; queries use the
`query` prompt, documents the first of `document` / `passage` / `corpus` (its `encode_query` /
`encode_document`), and otherwise `default_prompt_name` when the model declares one. vLLM-compatible endpoints
apply no prompt unless a request names one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from encoder.errors import InvalidInputError
from encoder.inputs import MultimodalInput, TextPair

__all__ = ["PromptRole", "apply_prompt", "check_inputs", "role_prompt_names"]

PromptRole = Literal["query", "document"]
_ROLE_KEYS: dict[PromptRole, tuple[str, ...]] = {"query": ("query",), "document": ("document", "passage", "corpus")}


def role_prompt_names(prompts: Mapping[str, str], default_prompt_name: str | None) -> dict[PromptRole, str]:
    """The prompt name sentence-transformers' `encode_query` / `encode_document` would use, per role.

    >>> role_prompt_names({"query": "query: ", "passage": "passage: "}, None)
    {'query': 'query', 'document': 'passage'}
    >>> role_prompt_names({"web": "Represent: "}, "web")
    {'query': 'web', 'document': 'web'}
    """
    names: dict[PromptRole, str] = {}
    for role, keys in _ROLE_KEYS.items():
        found = next((k for k in keys if k in prompts), default_prompt_name if default_prompt_name in prompts else None)
        if found is not None:
            names[role] = found
    return names


def apply_prompt(prompts: Sequence[object], prompt_name: str | None, table: Mapping[str, str]) -> list[object]:
    """Prepend the named prompt to every text input (token ids and pairs pass through)."""
    if prompt_name is None:
        return list(prompts)
    if prompt_name not in table:
        allowed = sorted(table) or "none"
        raise InvalidInputError(
            f"prompt_name {prompt_name!r} is not one of this model's prompts: {allowed}", param="prompt_name"
        )
    prefix = table[prompt_name]
    return [prefix + p if isinstance(p, str) else p for p in prompts]


def _as_text(item: MultimodalInput, architecture: str, i: int) -> str:
    if not item.is_text_only:
        raise InvalidInputError(f"MultiModalParam is not supported for {architecture}", param=f"input[{i}]")
    return item.text()


def check_inputs(
    prompts: Sequence[object], vocab_size: int, architecture: str, accepts_images: bool = False
) -> list[object]:
    """Reject empty input, empty strings and out-of-range token ids (400); text-only content becomes text.

    Content with images passes through as is when the model `accepts_images`; otherwise it is vLLM's 400
    "MultiModalParam is not supported for <architecture>".
    """
    if not prompts:
        raise InvalidInputError("Input must not be empty: give at least one text or token list", param="input")
    out: list[object] = []
    for i, p in enumerate(prompts):
        if isinstance(p, MultimodalInput):
            if accepts_images and not p.is_text_only:
                out.append(p)
                continue
            p = _as_text(p, architecture, i)
        if isinstance(p, TextPair):  # cross-encoder pair: both sides must be non-empty text
            if not p.text or not p.text_pair:
                raise InvalidInputError(f"input[{i}] is a pair with an empty side", param="input")
        elif isinstance(p, str):
            if not p:
                raise InvalidInputError(f"input[{i}] is an empty string", param="input")
        elif not p:
            raise InvalidInputError(f"input[{i}] is an empty token list", param="input")
        elif min(p) < 0 or max(p) >= vocab_size:  # type: ignore[call-overload]
            raise InvalidInputError(f"input[{i}] has token ids outside the vocabulary [0, {vocab_size})", param="input")
        out.append(p)
    return out
