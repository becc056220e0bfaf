"""The tokenizer side of `Engine`: every tokenizer operation the layers above need, with the locking inside.

Hugging Face fast tokenizers keep truncation state, so one caller at a time holds the tokenizer's lock;
nothing outside `encoder/` sees the tokenizer object or its lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from encoder.chat import render_chat
from encoder.errors import InvalidInputError
from encoder.tokenizer import TextTokenizer

__all__ = ["EngineText"]


class EngineText:
    """Tokenizer operations of one served model."""

    def __init__(self, tokenizer: TextTokenizer, max_model_len: int) -> None:
        self._tokenizer = tokenizer
        self._max_model_len = max_model_len
        with tokenizer.lock:
            self._specials = len(tokenizer.hf("", add_special_tokens=True)["input_ids"])

    @property
    def max_model_len(self) -> int:
        """Tokens per input the model accepts, special tokens included."""
        return self._max_model_len

    @property
    def vocab_size(self) -> int:
        return len(self._tokenizer.hf)

    @property
    def num_special_tokens(self) -> int:
        """Tokens the tokenizer adds around one text ([CLS] + [SEP] = 2 for BERT)."""
        return self._specials

    def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text`, not length-checked."""
        with self._tokenizer.lock:
            return self._tokenizer.encode([text], add_special_tokens=add_special_tokens, check_length=False)[0]

    def count_tokens(self, texts: Sequence[str], *, add_special_tokens: bool = True) -> list[int]:
        """Tokens per text as the model would read it (before truncation)."""
        with self._tokenizer.lock:
            ids = self._tokenizer.encode(list(texts), add_special_tokens=add_special_tokens, check_length=False)
        return [len(x) for x in ids]

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """The vocabulary string of each id."""
        self._check_ids(ids, "tokens")
        return self._tokenizer.convert_ids_to_tokens(ids)

    def detokenize(self, ids: Sequence[int]) -> str:
        """Text of token ids; ids outside the vocabulary are a 400."""
        self._check_ids(ids, "tokens")
        with self._tokenizer.lock:
            return self._tokenizer.decode(ids)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character span `[start, end)` of every token of `text`, special tokens excluded (for chunking)."""
        with self._tokenizer.lock:
            enc = self._tokenizer.hf(text, add_special_tokens=False, return_offsets_mapping=True)
        return [(int(s), int(e)) for s, e in enc["offset_mapping"]]

    def cut_to_tokens(self, texts: Sequence[str], limit: int) -> list[str]:
        """Each text cut after its first `limit` tokens, at a character boundary."""
        with self._tokenizer.lock:
            enc = self._tokenizer.hf(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        return [t if len(off) <= limit else t[: off[limit - 1][1]] for t, off in zip(texts, offsets, strict=True)]

    def render_chat(
        self,
        messages: Any,
        *,
        add_generation_prompt: bool = False,
        continue_final_message: bool = False,
        chat_template: str | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
    ) -> str:
        """OpenAI chat `messages` rendered with the model's chat template (problems are the client's: 400)."""
        with self._tokenizer.lock:
            return render_chat(
                self._tokenizer.hf,
                messages,
                add_generation_prompt=add_generation_prompt,
                continue_final_message=continue_final_message,
                chat_template=chat_template,
                chat_template_kwargs=chat_template_kwargs,
            )

    def get_tokenizer(self) -> Any:
        """The Hugging Face tokenizer, for vLLM's `LLM.get_tokenizer()` only (encoding paths never need it)."""
        return self._tokenizer.hf

    def _check_ids(self, ids: Sequence[int], param: str) -> None:
        vocab = self.vocab_size
        bad = [t for t in ids if not 0 <= t < vocab]
        if bad:
            raise InvalidInputError(f"token ids {bad[:5]} are outside the vocabulary [0, {vocab})", param=param)
