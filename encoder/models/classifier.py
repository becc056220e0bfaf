"""Sequence classifiers and cross-encoders: encoder and decoder `*ForSequenceClassification` checkpoints.

- Encoders (BERT, XLM-R, ...): the checkpoint's own Hugging Face head runs unchanged (CLS-based, so the
  padding side does not matter); this is exactly what sentence-transformers' `CrossEncoder.predict` runs.
- Decoders (Qwen2, Llama, ...): the backbone's hidden states go through the `score` head at every position
  and the row is LAST-pooled by attention mask. HF's own head finds "the last token that is not pad", which
  is wrong when the tokenizer appends EOS and EOS is also the pad token (Qwen), so it is not used.

Tasks: `classify` (softmax / sigmoid / identity by `problem_type`), `score` (cross-encoder: one label,
sentence-transformers `activation_fn` honoured, else sigmoid) and, for decoders, `token_classify`.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Sequence
from typing import Any

import torch

from encoder.batch import Batch
from encoder.errors import InputTooLongError, InvalidInputError, ModelLoadError, UnsupportedTaskError
from encoder.inputs import Prompt, TextPair
from encoder.models.base import TASK_API_NAMES, ModelAdapter
from encoder.types import ModelKind, PoolingParams, Task, TokenizedInput, TruncationSide
from poolers.activation import apply_activation, classify_activation
from poolers.pooling import pool, pool_all

__all__ = ["SequenceClassifier", "cross_encoder_activation"]

_TORCH_MODULES = "torch.nn.modules."


def cross_encoder_activation(config: Any) -> torch.nn.Module | None:
    """The sentence-transformers CrossEncoder activation named by `config`, or None when it names none.

    Reads `config.sentence_transformers["activation_fn"]` (or the pre-v4
    `sbert_ce_default_activation_function`).
    Only classes under `torch.nn.modules.` are loaded (as vLLM does); anything else is a `ModelLoadError`.
    """
    st = getattr(config, "sentence_transformers", None)
    path = st.get("activation_fn") if isinstance(st, dict) else None
    path = path or getattr(config, "sbert_ce_default_activation_function", None)
    if not path:
        return None
    if not isinstance(path, str) or not path.startswith(_TORCH_MODULES):
        raise ModelLoadError(
            f"activation_fn {path!r} is not allowed: loading activation functions is restricted to "
            f"{_TORCH_MODULES}* for security reasons"
        )
    module_name, _, cls_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"activation_fn {path!r} does not exist: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ModelLoadError(f"activation_fn {path!r} is not a torch.nn.Module class")
    return cls()


class SequenceClassifier(ModelAdapter):
    """Every `*For*Classification` model (registered as the fallback adapter of the `classify` task)."""

    def load_module(self) -> torch.nn.Module:
        from transformers import AutoModelForSequenceClassification

        module = self.load_backbone(AutoModelForSequenceClassification)
        config = self.info.config
        self.num_labels = int(config.num_labels)
        self.labels = [str(config.id2label.get(i, f"LABEL_{i}")) for i in range(self.num_labels)]
        self.classify_act = classify_activation(self.num_labels, getattr(config, "problem_type", None))
        self.score_act = cross_encoder_activation(config)
        head = getattr(module, "score", None)
        self.per_token = self.info.is_decoder and isinstance(head, torch.nn.Linear)
        self._pair_tok = {side: _with_side(self.tokenizer.hf, side) for side in ("left", "right")}
        return module

    # -- tasks ---------------------------------------------------------------------------------------
    @property
    def kind(self) -> ModelKind:
        """One label: a cross-encoder (pair scores); more: a classifier."""
        return "cross-encoder" if self.num_labels == 1 else "classifier"

    def check_task(self, task: Task) -> None:
        """`score` needs exactly one label; `token_classify` needs a per-token head (decoders)."""
        super().check_task(task)
        if (task == "score" and self.num_labels != 1) or (task == "token_classify" and not self.per_token):
            raise UnsupportedTaskError(f"The model does not support {TASK_API_NAMES[task]}")

    def output_size(self, task: Task) -> int:
        return self.num_labels

    # -- tokenising ----------------------------------------------------------------------------------
    def tokenize(
        self,
        prompts: Sequence[Prompt | TextPair],
        params: PoolingParams,
        *,
        truncate: int | None = None,
        side: TruncationSide | None = None,
        add_special_tokens: bool = True,
    ) -> list[TokenizedInput]:
        """Single prompts as usual; `TextPair`s as one sequence with the tokenizer's pair template."""
        singles = [p for p in prompts if not isinstance(p, TextPair)]
        pairs = [p for p in prompts if isinstance(p, TextPair)]
        done_singles = iter(
            super().tokenize(singles, params, truncate=truncate, side=side, add_special_tokens=add_special_tokens)
            if singles
            else []
        )
        done_pairs = iter(self.tokenize_pairs(pairs, truncate, side, add_special_tokens) if pairs else [])
        return [next(done_pairs) if isinstance(p, TextPair) else next(done_singles) for p in prompts]

    def tokenize_pairs(
        self,
        pairs: Sequence[TextPair],
        truncate: int | None,
        side: TruncationSide | None,
        add_special_tokens: bool,
    ) -> list[TokenizedInput]:
        """`tokenizer(text, text_pair)`; with `truncate`, `longest_first` truncation at that many tokens
        (as sentence-transformers' CrossEncoder); without it, a pair over `max_model_len` is refused."""
        lower = self.tokenizer.do_lower_case
        firsts = [p.text.lower() if lower else p.text for p in pairs]
        seconds = [p.text_pair.lower() if lower else p.text_pair for p in pairs]
        kwargs: dict[str, Any] = {"add_special_tokens": add_special_tokens, "return_attention_mask": False}
        if truncate is not None:
            kwargs.update(truncation="longest_first", max_length=truncate)
        try:
            enc = self._pair_tok[side or "right"](firsts, seconds, **kwargs)
        except Exception as exc:  # the tokenizer refuses e.g. a max_length below its special tokens
            raise InvalidInputError(f"cannot tokenise the pairs: {exc}", param="truncate_prompt_tokens") from exc
        types = enc.get("token_type_ids")
        out = []
        for i, ids in enumerate(enc["input_ids"]):
            if truncate is not None and len(ids) > truncate:  # the tokenizer only logs when it cannot cut
                raise InvalidInputError(
                    f"truncate_prompt_tokens={truncate} leaves no room for a pair: "
                    "its special tokens and one token per side need more",
                    param="truncate_prompt_tokens",
                )
            if len(ids) > self.info.max_model_len:
                raise InputTooLongError(len(ids), self.info.max_model_len)
            out.append(TokenizedInput(input_ids=list(ids), token_type_ids=list(types[i]) if types else None))
        return out

    # -- running -------------------------------------------------------------------------------------
    def forward(self, batch: Batch) -> torch.Tensor:
        """Decoders: per-token logits (b, L, C); encoders: the checkpoint head's logits (b, C)."""
        kwargs: dict[str, Any] = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if batch.token_type_ids is not None:
            kwargs["token_type_ids"] = batch.token_type_ids
        module: Any = self.module
        if self.per_token:
            base = getattr(module, module.base_model_prefix)
            return module.score(base(**kwargs).last_hidden_state)
        return module(**kwargs).logits

    def pool(
        self, task: Task, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]
    ) -> list[torch.Tensor]:
        """`classify`/`score`: float32 (C,) per row; `token_classify`: float32 (n_i, C) per row."""
        if task == "token_classify":
            rows = pool_all(hidden, batch.keep_mask)
            return [self._activate(r.cpu(), "classify", p) for r, p in zip(rows, params, strict=True)]
        if task not in ("classify", "score"):
            return super().pool(task, hidden, batch, params)
        logits = hidden.float()
        if self.per_token:
            kind = self.info.pooling_type if self.info.pooling_type != "ALL" else "LAST"
            logits = pool(logits, batch.attention_mask, kind)
        return [self._activate(row.cpu(), task, p) for row, p in zip(logits, params, strict=True)]

    def _activate(self, logits: torch.Tensor, task: Task, params: PoolingParams) -> torch.Tensor:
        """The task's activation over the last dim of float32 (..., C), unless `use_activation` is False."""
        if params.use_activation is False:
            return logits.float()
        if task == "score" and self.score_act is not None:
            return self.score_act(logits.float()[None])[0].float()
        return apply_activation(logits, self.classify_act)


def _with_side(hf: Any, side: str) -> Any:
    """A copy of the Hugging Face tokenizer that truncates on `side`."""
    tok = copy.copy(hf)
    tok.truncation_side = side
    return tok
