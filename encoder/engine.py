"""One served model, and the only encoder surface the layers above use.

`Engine` answers what the model is (`kind`, `representations`, `supports`, `dimensions`, `max_model_len`,
`prompts`), does every tokenizer operation with the locking inside (`tokenize`, `detokenize`, `count_tokens`,
`token_spans`, `render_chat`, ...), and encodes. Encoding has one implementation, `run(calls)`: servers await
it (the shared batcher coalesces requests), scripts call `run_sync(calls)` (all inputs length-sorted into
token-budget batches in the calling thread). Both share validation, tokenisation and the forward pass, and
both can prepare batch i + 1 while batch i runs (`pipelined`) and run the forward compiled (`compiled`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from encoder.batch import Batch, collate, plan_batches
from encoder.batcher import Batcher, BatcherStats, BatchQueue, Reservation, Stages
from encoder.chat import chat_images, render_chat, split_rendered
from encoder.compiled import CompiledForward, bucket_width
from encoder.device import resolve_device, resolve_dtype
from encoder.fingerprint import ModelFingerprint, weights_digest
from encoder.inputs import ImagePart, MultimodalInput
from encoder.media import ImageLimits, load_image
from encoder.models.base import ModelAdapter
from encoder.models.registry import adapter_class, dedicated_tasks
from encoder.pipeline import prefetch
from encoder.prompts import PromptRole, check_inputs
from encoder.resolve import ModelInfo, resolve_model
from encoder.results import EncodeCall, EncodeResult
from encoder.text import EngineText
from encoder.tokpool import TokenizePool
from encoder.types import (
    COMBINED_TASKS,
    M3_TASK,
    ModelKind,
    ModelSpec,
    PoolingParams,
    Representation,
    Task,
    TokenizedInput,
    TokenOptions,
)

__all__ = ["EncodeCall", "EncodeResult", "Engine", "TokenOptions"]

_WINDOW = 4096  # inputs `run_sync` tokenises, sorts and plans together
_CUDA_MAX_PADDING = 0.15  # largest padded fraction of a CUDA batch


class Engine(EngineText):
    """Runs one model. Build it with `Engine.load(spec)`; nothing runs until the first request."""

    def __init__(self, adapter: ModelAdapter, image_limits: ImageLimits | None = None) -> None:
        super().__init__(adapter.tokenizer, adapter.info.max_model_len)
        self._adapter = adapter
        self.info: ModelInfo = adapter.info
        self.image_limits = image_limits or ImageLimits()  # what an untrusted image may be (multimodal models)
        self._run_lock = threading.Lock()
        self._batcher: BatchQueue | None = None
        self._compiled = CompiledForward(adapter.forward, adapter.info.name) if adapter.info.spec.compile else None
        self._pool = self._make_pool()
        adapter.tokenizer.attach_pool(self._pool)

    @classmethod
    def load(cls, spec: ModelSpec, image_limits: ImageLimits | None = None) -> Engine:
        """Resolve, load weights and tokenizer."""
        info = resolve_model(spec, dedicated_tasks)
        device = resolve_device(spec.device)
        adapter = adapter_class(info)(info, device, resolve_dtype(spec.dtype, device))
        return cls(adapter, image_limits)

    # -- what the model is ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def kind(self) -> ModelKind:
        """dense, multi-vector, cross-encoder, classifier, reward or token-classifier."""
        return self._adapter.kind

    @property
    def representations(self) -> frozenset[Representation]:
        """The retrievable representations this model produces (BGE-M3: all three from one pass)."""
        return self._adapter.representations

    @property
    def late_interaction(self) -> bool:
        """Pairs are scored with MaxSim over query/document token vectors."""
        return self.kind == "multi-vector"

    @property
    def default_task(self) -> Task:
        return self.info.default_task

    def supports(self, task: Task) -> bool:
        """Whether the model runs `task` (adapters may narrow the architecture's table, e.g. by labels)."""
        return self._adapter.supports(task)

    def check_task(self, task: Task) -> None:
        """Raise vLLM's "The model does not support ... API" (`UnsupportedTaskError`) unless supported."""
        self._adapter.check_task(task)

    def dimensions(self, task: Task = "embed") -> int:
        """Width of one output vector of `task` before any Matryoshka truncation."""
        return self._adapter.output_size(task)

    def output_dimensions(self, task: Task = "embed") -> int:
        """Width of one output vector of `task` as served to a request that names no `dimensions`: the pooler
        config's default (`--pooler-config '{"dimensions": 128}'`, applied by `resolve_params`) when set, else
        `dimensions(task)`. What a collection over this model stores."""
        pc = self.info.spec.pooler_config
        return pc.dimensions if pc is not None and pc.dimensions is not None else self.dimensions(task)

    @property
    def device_type(self) -> str:
        return self._adapter.device.type

    @property
    def accepts_images(self) -> bool:
        """Image content parts can be encoded (ColQwen3-family models)."""
        return self._adapter.accepts_images

    def prompt(self, role: PromptRole) -> str | None:
        """The prompt name for queries or documents: the sentence-transformers one, or the model family's
        (ColQwen3: `query` = query augmentation, `document` = the image template); None when there is none."""
        return self._adapter.role_prompts.get(role)

    @property
    def adapters(self) -> tuple[str, ...]:
        """Task adapters a request may pick with `PoolingParams.adapter` (jina-embeddings-v3's LoRAs)."""
        return self._adapter.adapters

    def role_adapter(self, role: PromptRole) -> str | None:
        """The task adapter for queries / documents (`retrieval.query` / `retrieval.passage`), if the model has it."""
        name = {"query": "retrieval.query", "document": "retrieval.passage"}[role]
        return name if name in self.adapters else None

    @functools.cached_property
    def weights_sha256(self) -> str:
        """sha256 over the checkpoint's weight files (computed once, on first use; MiniLM takes ~0.2 s)."""
        return weights_digest(self.info.root)

    def fingerprint(self, task: Task) -> ModelFingerprint:
        """What the document-side vectors of `task` depend on: weights, width, pooling, normalisation, prompt."""
        return ModelFingerprint(
            model=self.name,
            weights_sha256=self.weights_sha256,
            revision=self.info.spec.revision,
            task=task,
            dimensions=self.output_dimensions(task) if task != M3_TASK else self.info.hidden_size,
            pooling=str(self.info.pooling_type),
            normalize=self.info.normalize,
            prompt=self.prompt("document"),
            max_model_len=self.max_model_len,
        )

    # -- feeding the model ---------------------------------------------------------------------------
    @property
    def tokenize_workers(self) -> int:
        """Parallel tokenisation chunks: the spec's count, else 0 on CPU (torch has the cores) and
        `cpus - 2` (at most 8) on CUDA, where one tokenising thread cannot keep up with the GPU."""
        workers = self.info.spec.tokenize_workers
        if workers is not None:
            return max(0, workers)
        return 0 if self.device_type != "cuda" else max(1, min(8, (os.cpu_count() or 2) - 2))

    @property
    def pipelined(self) -> bool:
        """Whether batch i + 1 is prepared (planned, collated, copied) while batch i runs, in `run_sync` and
        in the server's batcher: the spec's choice, else on CUDA only."""
        choice = self.info.spec.pipeline
        return self.device_type == "cuda" if choice is None else choice

    @property
    def compiled(self) -> bool:
        """Whether the forward pass runs under `torch.compile` (`ModelSpec.compile`, until a compile fails)."""
        return self._compiled is not None and self._compiled.active

    @property
    def bucketed(self) -> bool:
        """Whether batch widths are padded up to multiples of 64 (compiled on CUDA: bounds recompiles)."""
        return self._compiled is not None and self.device_type == "cuda"

    def _make_pool(self) -> TokenizePool | None:
        hf = self._tokenizer.hf
        workers = self.tokenize_workers
        if workers == 0 or not getattr(hf, "is_fast", False):
            return None
        return TokenizePool(hf.backend_tokenizer.to_str(), self.info.spec.tokenize_backend, workers)

    # -- batching ------------------------------------------------------------------------------------
    @property
    def max_batch_tokens(self) -> int:
        """The spec's budget, else 2048 padded tokens on CPU (cache-friendly) and 65536 on CUDA (a small model's
        forward pass is launch-bound below that: MiniLM on an H100 ran 2.8 M tokens/s at 16384, 6.5 M at 65536)."""
        budget = self.info.spec.max_batch_tokens
        return budget or (65536 if self.device_type == "cuda" else 2048)

    @property
    def batch_overhead_tokens(self) -> int | None:
        """What one forward call costs, in padded tokens, for the batch planner: CPUs pay per token, so
        batches split wherever padding would cost more (32); on CUDA padding is cheap (None = greedy)."""
        return None if self.device_type == "cuda" else 32

    def attach_batcher(self, batcher: BatchQueue) -> None:
        """Queue this engine's online work on `batcher` instead of a local one (an API worker process hands
        tokenised inputs to the engine process this way); `run` still validates and tokenises here."""
        if self._batcher is not None:
            self._batcher.stop()
        self._batcher = batcher

    @property
    def batch_max_padding(self) -> float | None:
        """On CUDA, where batches are planned greedily, a batch closes before its padding would pass 15% of
        its tokens; CPU plans already trade padding against call overhead exactly (None)."""
        return _CUDA_MAX_PADDING if self.device_type == "cuda" else None

    @property
    def batcher(self) -> BatchQueue:
        if self._batcher is None:
            spec = self.info.spec
            self._batcher = Batcher(
                Stages(self._collate, self._run_collated) if self.pipelined else self.run_batch,
                max_batch_tokens=self.max_batch_tokens,
                max_batch_size=spec.max_batch_size,
                max_queue=spec.max_queue,
                max_wait_s=spec.max_wait_ms / 1000,
                overhead_tokens=self.batch_overhead_tokens,
                max_padding=self.batch_max_padding,
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
        if self._pool is not None:
            self._pool.close()

    # -- preparing -----------------------------------------------------------------------------------
    def resolve_params(self, params: PoolingParams) -> PoolingParams:
        """Fill the task and per-task defaults decided at load (`ModelInfo`), then validate."""
        task: Task = params.task or self.info.default_task
        self._adapter.check_task(task)
        pc = self.info.spec.pooler_config
        resolved = PoolingParams(
            task=task,
            dimensions=params.dimensions if params.dimensions is not None else (pc.dimensions if pc else None),
            use_activation=params.use_activation if params.use_activation is not None else self.info.use_activation,
            embedding_mode=params.embedding_mode,
            adapter=params.adapter,
        )
        self._adapter.check_params(resolved)
        return resolved

    def prepare(self, prompts: Sequence[object], params: PoolingParams, opts: TokenOptions) -> list[TokenizedInput]:
        """Validate and tokenise inputs for resolved `params` (thread-safe; call it off the event loop)."""
        prompted = self._adapter.apply_prompt(prompts, opts.prompt_name)
        checked = check_inputs(prompted, self.vocab_size, self.info.architecture, self.accepts_images)
        checked = [self._decode_images(p) if isinstance(p, MultimodalInput) else p for p in checked]
        truncate = self._tokenizer.resolve_truncation(opts.truncate_prompt_tokens)
        with self._tokenizer.lock:
            return self._adapter.tokenize(
                checked,  # type: ignore[arg-type]
                params,
                truncate=truncate,
                side=opts.truncation_side,
                add_special_tokens=opts.add_special_tokens,
            )

    def _decode_images(self, item: MultimodalInput) -> MultimodalInput:
        """Every image part decoded under `image_limits` (untrusted URLs) or converted to RGB (trusted pixels)."""
        parts = tuple(
            ImagePart(p.url, load_image(p, self.image_limits)) if isinstance(p, ImagePart) else p for p in item.parts
        )
        return MultimodalInput(parts)

    def render_chat_input(
        self,
        messages: Any,
        *,
        add_generation_prompt: bool = False,
        continue_final_message: bool = False,
        chat_template: str | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
    ) -> str | MultimodalInput:
        """Chat `messages` as one encoder input: the rendered text, or -- for a model that takes images and
        messages that hold some -- that text split at each image placeholder with the image in its place."""
        options: dict[str, Any] = {
            "add_generation_prompt": add_generation_prompt,
            "continue_final_message": continue_final_message,
            "chat_template": chat_template,
            "chat_template_kwargs": chat_template_kwargs,
        }
        if not self.accepts_images:
            return self.render_chat(messages, **options)
        with self._tokenizer.lock:
            rendered = render_chat(self._tokenizer.hf, messages, allow_images=True, **options)
        images = chat_images(messages)
        return split_rendered(rendered, images, self._adapter.image_block) if images else rendered

    def _prepare_all(self, calls: Sequence[EncodeCall]) -> tuple[list[EncodeCall], list[list[TokenizedInput]]]:
        resolved = [EncodeCall(c.prompts, self.resolve_params(c.params), c.options) for c in calls]
        return resolved, [self.prepare(c.prompts, c.params, c.options) for c in resolved]

    # -- running -------------------------------------------------------------------------------------
    def run_batch(self, items: list[TokenizedInput], params: list[PoolingParams]) -> list[object]:
        """Collate, run the backbone once, pool each row by its task. Called from one thread at a time."""
        return self._run_collated(self._collate(items), params)

    def _collate(self, items: Sequence[TokenizedInput]) -> Batch:
        """`items` padded onto the model's device (to a bucket width when `bucketed`); any thread."""
        width = None
        if self.bucketed:
            width = bucket_width(max(len(it) for it in items), self.max_model_len)
        return collate(items, self._adapter.pad_id, self._adapter.device, width)

    def _run_collated(self, batch: Batch, params: list[PoolingParams]) -> list[object]:
        """Run the backbone once on a collated `batch` and pool each row by its task."""
        out: list[object] = [None] * len(batch.items)
        filled = 0
        with self._run_lock, torch.inference_mode():
            hidden = self._adapter.forward(batch) if self._compiled is None else self._compiled(batch)
            for task in {p.task for p in params}:
                rows = [i for i, p in enumerate(params) if p.task == task]
                sub = batch.select(rows)
                rows_hidden = hidden if sub is batch else hidden[rows]
                pooled = self._adapter.pool(task, rows_hidden, sub, [params[i] for i in rows])  # type: ignore[arg-type]
                for i, value in zip(rows, pooled, strict=True):
                    out[i] = value
                    filled += 1
        if filled != len(batch.items):
            raise RuntimeError(f"pooling filled {filled} of {len(batch.items)} rows")
        return out

    @staticmethod
    def _results(
        calls: Sequence[EncodeCall], items: Sequence[list[TokenizedInput]], flat: list[object]
    ) -> list[EncodeResult]:
        results, start = [], 0
        for call, its in zip(calls, items, strict=True):
            rows, start = flat[start : start + len(its)], start + len(its)
            ids = [it.input_ids for it in its]
            task = call.params.task or "embed"
            if task in COMBINED_TASKS:
                results.append(EncodeResult(task, [], ids, m3=rows))  # type: ignore[arg-type]
            else:
                results.append(EncodeResult(task, rows, ids))  # type: ignore[arg-type]
        return results

    async def run(
        self, calls: Sequence[EncodeCall], reservation: Reservation | None = None, *, background: bool = False
    ) -> list[EncodeResult]:
        """Encode several calls as one job through the shared batcher; tokenisation runs in a worker thread.

        Room in the queue is reserved before tokenising (or `reservation`'s, taken by a caller that planned the
        calls itself), so an overloaded server refuses at once, even when a burst arrives all together.
        `background` work (a reindex) is never refused and runs when no other work waits."""
        if reservation is None and not background:
            reservation = self.batcher.reserve(sum(len(c.prompts) for c in calls))
        with reservation or contextlib.nullcontext():
            resolved, items = await asyncio.to_thread(self._prepare_all, calls)
            flat_items, flat_params = _flatten(resolved, items)
            outputs = await self.batcher.submit(flat_items, flat_params, reservation, background=background)
        return self._results(resolved, items, list(outputs))

    def run_sync(self, calls: Sequence[EncodeCall]) -> list[EncodeResult]:
        """`run` in the calling thread: inputs length-sorted into token-budget batches, window by window.

        With the pipeline on (`ModelSpec.pipeline`; default on CUDA), a thread tokenises the next window
        while another collates batch i + 1 (pinned memory, non-blocking copy) as the model runs batch i.
        """
        resolved = [EncodeCall(c.prompts, self.resolve_params(c.params), c.options) for c in calls]
        for call in resolved:
            if not call.prompts:  # no window carries it: validate it here (an empty input is a 400)
                self.prepare(call.prompts, call.params, call.options)
        items: list[list[TokenizedInput]] = [[] for _ in resolved]
        outputs: dict[tuple[int, int], object] = {}
        windows: Iterator[_Window] = _windows(resolved, self.prepare, _WINDOW)
        batches = self._collated(prefetch(windows, 1) if self.pipelined else windows)
        for window, rows, batch in prefetch(batches, 2) if self.pipelined else batches:
            done = self._run_collated(batch, [window.params[i] for i in rows])
            for i, value in zip(rows, done, strict=True):
                outputs[window.keys[i]] = value
            if rows is window.last:
                for (call_no, _), item in zip(window.keys, window.items, strict=True):
                    items[call_no].append(item)
        flat = [outputs[(c, j)] for c, its in enumerate(items) for j in range(len(its))]
        return self._results(resolved, items, flat)

    def _collated(self, windows: Iterable[_Window]) -> Iterator[tuple[_Window, list[int], Batch]]:
        """Each window's token-budget batches, collated onto the model's device."""
        spec = self.info.spec
        for window in windows:
            lengths = [len(it) for it in window.items]
            plan = plan_batches(
                lengths, self.max_batch_tokens, spec.max_batch_size, self.batch_overhead_tokens, self.batch_max_padding
            )
            window.last = plan[-1] if plan else None
            for rows in plan:
                yield window, rows, self._collate([window.items[i] for i in rows])

    async def encode(
        self, prompts: Sequence[object], params: PoolingParams, opts: TokenOptions | None = None
    ) -> EncodeResult:
        """One call through the shared batcher (servers)."""
        (result,) = await self.run([EncodeCall(prompts, params, opts or TokenOptions())])
        return result

    def encode_sync(
        self, prompts: Sequence[object], params: PoolingParams, opts: TokenOptions | None = None
    ) -> EncodeResult:
        """One call in the calling thread (scripts, the offline `LLM`)."""
        (result,) = self.run_sync([EncodeCall(prompts, params, opts or TokenOptions())])
        return result


@dataclass(slots=True)
class _Window:
    """Up to `_WINDOW` consecutive inputs of a `run_sync` job, tokenised."""

    keys: list[tuple[int, int]]  # (call index, input index within the call) of each input
    items: list[TokenizedInput]  # the tokenised inputs, same order
    params: list[PoolingParams]  # each input's resolved params
    last: list[int] | None = None  # the window's final batch (set by the planner)


Prepare = Callable[[Sequence[object], PoolingParams, TokenOptions], list[TokenizedInput]]


def _windows(calls: Sequence[EncodeCall], prepare: Prepare, size: int) -> Iterator[_Window]:
    """Consecutive slices of `size` inputs across calls, each call's share tokenised with its options."""
    keys = [(c, j) for c, call in enumerate(calls) for j in range(len(call.prompts))]
    for start in range(0, len(keys), size):
        part = keys[start : start + size]
        items: list[TokenizedInput] = []
        params: list[PoolingParams] = []
        for c, group in itertools.groupby(part, key=lambda key: key[0]):
            call, idx = calls[c], [j for _, j in group]
            items += prepare([call.prompts[j] for j in idx], call.params, call.options)
            params += [call.params] * len(idx)
        yield _Window(part, items, params)


def _flatten(
    calls: Sequence[EncodeCall], items: Sequence[list[TokenizedInput]]
) -> tuple[list[TokenizedInput], list[PoolingParams]]:
    """Every input of a job in call order, each with its call's resolved params."""
    flat_items = [it for its in items for it in its]
    flat_params = [c.params for c, its in zip(calls, items, strict=True) for _ in its]
    return flat_items, flat_params
