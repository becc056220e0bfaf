"""Tokenisation with vLLM's truncation rules: `truncate_prompt_tokens` (-1 = model max) and `truncation_side`."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from encoder.errors import InputTooLongError, InvalidInputError, ModelLoadError
from encoder.inputs import Prompt
from encoder.tokpool import TokenizePool
from encoder.types import TruncationSide

__all__ = ["Prompt", "TextTokenizer", "load_hf_tokenizer"]


def load_hf_tokenizer(folder: Path, trust_remote_code: bool, config: Any = None) -> Any:
    """Load the checkpoint's (fast) tokenizer from `folder`; a given `config` spares AutoTokenizer reading one."""
    from transformers import AutoTokenizer

    extra = {} if config is None else {"config": config}
    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code, **extra)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load a tokenizer from {folder}: {exc}") from exc


class TextTokenizer:
    """Wraps a Hugging Face tokenizer; returns plain lists of ids and enforces the model's length limit."""

    def __init__(self, hf: Any, max_model_len: int, do_lower_case: bool = False) -> None:
        self.hf = hf
        self.lock = threading.RLock()  # HF fast tokenizers keep truncation state: one caller at a time
        self.max_model_len = max_model_len
        self.do_lower_case = do_lower_case
        self._left = copy.copy(hf)
        self._left.truncation_side = "left"
        self._right = copy.copy(hf)
        self._right.truncation_side = "right"
        self.pool: TokenizePool | None = None  # parallel packed tokenisation of large batches (see attach_pool)

    def attach_pool(self, pool: TokenizePool | None) -> None:
        """Tokenise batches larger than `pool.chunk` texts through `pool` (fast tokenizers only)."""
        self.pool = pool if pool is None or getattr(self.hf, "is_fast", False) else None

    def resolve_truncation(self, truncate_prompt_tokens: int | None) -> int | None:
        """-1 -> the model's max; a value over the max is vLLM's 400; None -> no truncation."""
        if truncate_prompt_tokens is None:
            return None
        if truncate_prompt_tokens == -1:
            return self.max_model_len
        if truncate_prompt_tokens < -1 or truncate_prompt_tokens == 0:
            raise InvalidInputError(
                "truncate_prompt_tokens must be -1 or a positive integer", param="truncate_prompt_tokens"
            )
        if truncate_prompt_tokens > self.max_model_len:
            raise InvalidInputError(
                f"truncate_prompt_tokens value ({truncate_prompt_tokens}) is greater than "
                f"max_model_len ({self.max_model_len}). Please, select a smaller truncation size.",
                param="truncate_prompt_tokens",
            )
        return truncate_prompt_tokens

    def encode(
        self,
        prompts: Sequence[Prompt],
        *,
        truncate: int | None = None,
        side: TruncationSide | None = None,
        add_special_tokens: bool = True,
        check_length: bool = True,
    ) -> list[list[int]]:
        """Tokenise texts (token-id lists pass through); truncate to `truncate` tokens or check the limit."""
        texts = [(i, p) for i, p in enumerate(prompts) if isinstance(p, str)]
        out: list[list[int]] = [list(p) if not isinstance(p, str) else [] for p in prompts]
        if texts:
            tok = self._left if side == "left" else self._right
            batch = [t.lower() if self.do_lower_case else t for _, t in texts]
            kwargs: dict[str, Any] = {
                "add_special_tokens": add_special_tokens,
                "return_attention_mask": False,
            }
            if truncate is not None:
                kwargs.update(truncation=True, max_length=truncate)
            encoded = self._encode_texts(tok, batch, kwargs, truncate, side)
            for (i, _), ids in zip(texts, encoded, strict=True):
                out[i] = list(ids)
        for i, p in enumerate(prompts):
            if not isinstance(p, str) and truncate is not None and len(p) > truncate:
                out[i] = list(p[-truncate:]) if side == "left" else list(p[:truncate])
        if check_length:
            for ids in out:
                if len(ids) > self.max_model_len:
                    raise InputTooLongError(len(ids), self.max_model_len)
        return out

    def _encode_texts(
        self, tok: Any, batch: list[str], kwargs: dict[str, Any], truncate: int | None, side: TruncationSide | None
    ) -> list[list[int]]:
        pool = self.pool
        if pool is not None and len(batch) > pool.chunk:
            add = bool(kwargs["add_special_tokens"])
            return pool.encode(batch, add_special_tokens=add, truncate=truncate, side=side or "right").to_lists()
        return list(tok(batch, **kwargs)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.hf.decode(list(ids)))

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return list(self.hf.convert_ids_to_tokens(list(ids)))
