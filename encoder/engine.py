"""One served model: adapter + tokenizer + batcher, with an async API for servers and a sync one for scripts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from encoder.batch import collate, plan_batches
from encoder.batcher import Batcher, BatcherStats
from encoder.device import resolve_device, resolve_dtype
from encoder.errors import InvalidInputError
from encoder.models.base import ModelAdapter
from encoder.models.registry import adapter_class, dedicated_tasks
from encoder.resolve import ModelInfo, resolve_model
from encoder.tokenizer import Prompt
from encoder.types import ModelSpec, PoolingParams, Task, TextPair, TokenizedInput, TruncationSide

__all__ = ["EncodeResult", "Engine", "TokenOptions"]


@dataclass(frozen=True, slots=True)
class TokenOptions:
    """How prompts are tokenised (vLLM's request fields)."""

    truncate_prompt_tokens: int | None = None  # -1 = model max; None = refuse over-long input
    truncation_side: TruncationSide | None = None  # right keeps the first tokens, left the last
    add_special_tokens: bool = True


@dataclass(frozen=True, slots=True)
class EncodeResult:
    """Outputs in prompt order (float32 CPU tensors) and the token ids the model read for each prompt."""

    outputs: list[torch.Tensor]
    prompt_token_ids: list[list[int]]

    @property
    def prompt_tokens(self) -> list[int]:
        """Token count per prompt (for usage blocks)."""
        return [len(ids) for ids in self.prompt_token_ids]


def check_prompts(prompts: Sequence[Prompt], vocab_size: int) -> None:
    """Reject empty input, empty strings and out-of-range token ids with a 400-class error."""
    if not prompts:
        raise InvalidInputError("Input must not be empty: give at least one text or token list", param="input")
    for i, p in enumerate(prompts):
        if isinstance(p, TextPair):  # cross-encoder pair: both sides must be non-empty text
            if not p.text or not p.text_pair:
                raise InvalidInputError(f"input[{i}] is a pair with an empty side", param="input")
            continue
        if isinstance(p, str):
            if not p:
                raise InvalidInputError(f"input[{i}] is an empty string", param="input")
        elif not p:
            raise InvalidInputError(f"input[{i}] is an empty token list", param="input")
        elif min(p) < 0 or max(p) >= vocab_size:
            raise InvalidInputError(f"input[{i}] has token ids outside the vocabulary [0, {vocab_size})", param="input")


class Engine:
    """Runs one model. `encode` is for servers (batched across requests); `encode_sync` for offline use."""

    def __init__(self, adapter: ModelAdapter) -> None:
        self.adapter = adapter
        self.info: ModelInfo = adapter.info
        self._run_lock = threading.Lock()
        self._batcher: Batcher | None = None

    @classmethod
    def load(cls, spec: ModelSpec) -> Engine:
        """Resolve, load weights and tokenizer; nothing starts running until the first request."""
        info = resolve_model(spec, dedicated_tasks())
        device = resolve_device(spec.device)
        adapter = adapter_class(info)(info, device, resolve_dtype(spec.dtype, device))
        return cls(adapter)

    @property
    def max_batch_tokens(self) -> int:
        """The spec's budget, else 2048 padded tokens on CPU (cache-friendly) and 16384 on CUDA."""
        budget = self.info.spec.max_batch_tokens
        return budget or (16384 if self.adapter.device.type == "cuda" else 2048)

    @property
    def batch_overhead_tokens(self) -> int | None:
        """What one forward call costs, in padded tokens, for the batch planner: CPUs pay per token, so
        batches split wherever padding would cost more (32); on CUDA padding is cheap (None = greedy)."""
        return None if self.adapter.device.type == "cuda" else 32

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def batcher(self) -> Batcher:
        if self._batcher is None:
            spec = self.info.spec
            self._batcher = Batcher(
                self.run_batch,
                max_batch_tokens=self.max_batch_tokens,
                max_batch_size=spec.max_batch_size,
                max_queue=spec.max_queue,
                max_wait_s=spec.max_wait_ms / 1000,
                overhead_tokens=self.batch_overhead_tokens,
                name=self.name,
            )
        return self._batcher

    @property
    def stats(self) -> BatcherStats:
        """Batching counters (all zero before the first online request; reading them starts nothing)."""
        return self._batcher.stats if self._batcher is not None else BatcherStats()

    @property
    def healthy(self) -> bool:
        """False once the batcher's worker thread has died."""
        return self._batcher is None or self._batcher.alive

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.stop()
            self._batcher = None

    # -- preparing -----------------------------------------------------------------------------------
    def resolve_params(self, params: PoolingParams) -> PoolingParams:
        task: Task = params.task or self.adapter.default_task
        self.adapter.check_task(task)
        pc = self.info.spec.pooler_config
        resolved = PoolingParams(
            task=task,
            dimensions=params.dimensions if params.dimensions is not None else (pc.dimensions if pc else None),
            use_activation=params.use_activation if params.use_activation is not None else self._activation(),
            embedding_mode=params.embedding_mode,
            adapter=params.adapter,
        )
        self.adapter.check_params(resolved)
        return resolved

    def _activation(self) -> bool | None:
        pc = self.info.spec.pooler_config
        if pc is None:
            return None
        return pc.use_activation if pc.use_activation is not None else pc.normalize

    def prepare(self, prompts: Sequence[Prompt], params: PoolingParams, opts: TokenOptions) -> list[TokenizedInput]:
        """Validate and tokenise (thread-safe; call it off the event loop)."""
        check_prompts(prompts, len(self.adapter.tokenizer.hf))
        truncate = self.adapter.tokenizer.resolve_truncation(opts.truncate_prompt_tokens)
        with self.adapter.tokenizer.lock:
            return self.adapter.tokenize(
                prompts,
                params,
                truncate=truncate,
                side=opts.truncation_side,
                add_special_tokens=opts.add_special_tokens,
            )

    # -- running -------------------------------------------------------------------------------------
    def run_batch(self, items: list[TokenizedInput], params: list[PoolingParams]) -> list[torch.Tensor]:
        """Collate, run the backbone once, pool each row by its task. Called from one thread at a time."""
        batch = collate(items, self.adapter.pad_id, self.adapter.device)
        with self._run_lock, torch.inference_mode():
            hidden = self.adapter.forward(batch)
            out: list[torch.Tensor | None] = [None] * len(items)
            for task in {p.task for p in params}:
                rows = [i for i, p in enumerate(params) if p.task == task]
                sub = batch.select(rows)
                rows_hidden = hidden if sub is batch else hidden[rows]
                pooled = self.adapter.pool(task, rows_hidden, sub, [params[i] for i in rows])  # type: ignore[arg-type]
                for i, value in zip(rows, pooled, strict=True):
                    out[i] = value
        return [o for o in out if o is not None]

    async def encode(
        self, prompts: Sequence[Prompt], params: PoolingParams, opts: TokenOptions | None = None
    ) -> EncodeResult:
        """Encode through the shared batcher; tokenisation runs in a worker thread."""
        params = self.resolve_params(params)
        items = await asyncio.to_thread(self.prepare, prompts, params, opts or TokenOptions())
        outputs = await self.batcher.submit(items, [params] * len(items))
        return EncodeResult(outputs, [it.input_ids for it in items])

    def encode_sync(
        self, prompts: Sequence[Prompt], params: PoolingParams, opts: TokenOptions | None = None
    ) -> EncodeResult:
        """Encode in the calling thread: sort all prompts by length and run token-budget batches."""
        params = self.resolve_params(params)
        items = self.prepare(prompts, params, opts or TokenOptions())
        spec = self.info.spec
        outputs: list[torch.Tensor | None] = [None] * len(items)
        for rows in plan_batches(
            [len(it) for it in items], self.max_batch_tokens, spec.max_batch_size, self.batch_overhead_tokens
        ):
            for i, value in zip(rows, self.run_batch([items[i] for i in rows], [params] * len(rows)), strict=True):
                outputs[i] = value
        return EncodeResult([o for o in outputs if o is not None], [it.input_ids for it in items])
