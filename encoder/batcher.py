"""Dynamic batching: many small async requests -> length-sorted batches under a token budget, one worker thread."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from encoder.batch import plan_batches
from encoder.errors import EncoderError, OverloadedError
from encoder.types import PoolingParams, TokenizedInput

__all__ = ["BatchQueue", "Batcher", "BatcherStats", "RunBatch"]

log = logging.getLogger(__name__)

RunBatch = Callable[[list[TokenizedInput], list[PoolingParams]], list[object]]  # one output per input


@dataclass(slots=True)
class _Work:
    item: TokenizedInput
    params: PoolingParams
    future: asyncio.Future[object]
    loop: asyncio.AbstractEventLoop


@dataclass(slots=True)
class BatcherStats:
    """Counters read by /metrics."""

    queued: int = 0  # sequences admitted and not yet run
    windows: int = 0  # times the worker took work from the queue (each is sorted and split into batches)
    batches: int = 0  # forward passes run
    sequences: int = 0  # sequences run
    tokens: int = 0  # real (unpadded) tokens run
    padded_tokens: int = 0  # tokens including padding
    rejected: int = 0  # sequences refused because the queue was full
    cancelled: int = 0  # sequences skipped because their client went away

    @property
    def padding_ratio(self) -> float:
        """Fraction of the tokens run that were padding (0.0 before the first batch).

        >>> BatcherStats(tokens=75, padded_tokens=100).padding_ratio
        0.25
        """
        return 0.0 if self.padded_tokens == 0 else 1.0 - self.tokens / self.padded_tokens


class BatchQueue(Protocol):
    """What `Engine` needs of its batcher: the local `Batcher`, or a client of a remote engine process."""

    stats: BatcherStats  # counters read by /metrics

    async def submit(self, items: Sequence[TokenizedInput], params: Sequence[PoolingParams]) -> list[object]:
        """Outputs of `items` (same order); raises `OverloadedError` when admission is full."""
        ...

    @property
    def alive(self) -> bool:
        """False once the queue can no longer run work (worker thread or engine process gone)."""
        ...

    def stop(self) -> None:
        """Refuse new work and release the worker."""
        ...


def _resolve(future: asyncio.Future[object], value: object) -> None:
    if future.done():
        return
    if isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)


class Batcher:
    """Owns one worker thread that runs `run(items, params)` under `torch.inference_mode`.

    Admission is bounded by `max_queue` sequences: beyond it `submit` raises `OverloadedError` at once.
    Each pass takes up to `lookahead` queued sequences, sorts them by length and splits them into batches
    of at most `max_batch_size` rows and `max_batch_tokens` padded tokens (and, with `max_padding`, at most
    that fraction of padding per batch). Cancelled work is skipped.
    """

    def __init__(
        self,
        run: RunBatch,
        *,
        max_batch_tokens: int,
        max_batch_size: int,
        max_queue: int,
        max_wait_s: float = 0.0,
        overhead_tokens: int | None = None,
        max_padding: float | None = None,
        name: str = "model",
    ) -> None:
        self._run = run
        self._overhead_tokens = overhead_tokens
        self._max_padding = max_padding
        self._max_wait_s = max_wait_s
        self._max_batch_tokens = max_batch_tokens
        self._max_batch_size = max_batch_size
        self._max_queue = max_queue
        self._lookahead = max(max_batch_size * 4, 64)
        self._queue: deque[_Work] = deque()
        self._cond = threading.Condition()
        self._stopped = False
        self.stats = BatcherStats()
        self._thread = threading.Thread(target=self._loop, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    async def submit(self, items: Sequence[TokenizedInput], params: Sequence[PoolingParams]) -> list[object]:
        """Queue `items` and wait for their outputs (same order). Cancelling the caller cancels the work."""
        loop = asyncio.get_running_loop()
        work = [_Work(it, p, loop.create_future(), loop) for it, p in zip(items, params, strict=True)]
        with self._cond:
            if self._stopped:
                raise EncoderError("the model is shutting down")
            if self.stats.queued + len(work) > self._max_queue:
                self.stats.rejected += len(work)
                raise OverloadedError(
                    f"the server is overloaded: {self.stats.queued} sequences are queued "
                    f"(limit {self._max_queue}); retry later"
                )
            self._queue.extend(work)
            self.stats.queued += len(work)
            self._cond.notify()
        try:
            return list(await asyncio.gather(*(w.future for w in work)))
        finally:
            for w in work:
                w.future.cancel()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=10)

    def _take(self) -> list[_Work] | None:
        with self._cond:
            while not self._queue and not self._stopped:
                self._cond.wait()
            self._gather_stragglers()
            if self._stopped:
                return None
            n = min(len(self._queue), self._lookahead)
            self.stats.windows += 1
            return [self._queue.popleft() for _ in range(n)]

    def _gather_stragglers(self) -> None:
        """With fewer than a batch queued, wait up to `max_wait_s` for more (called holding the lock).

        Concurrent clients answered by the same batch send their next requests a few milliseconds apart;
        waiting that long merges them into one forward pass instead of several small ones.
        """
        deadline = time.monotonic() + self._max_wait_s
        while len(self._queue) < self._max_batch_size and not self._stopped:
            left = deadline - time.monotonic()
            if left <= 0 or not self._cond.wait(timeout=left):
                return

    def _loop(self) -> None:
        with torch.inference_mode():
            while (window := self._take()) is not None:
                live = [w for w in window if not w.future.done()]
                self._skip(len(window) - len(live))
                lengths = [len(w.item) for w in live]
                for rows in plan_batches(
                    lengths, self._max_batch_tokens, self._max_batch_size, self._overhead_tokens, self._max_padding
                ):
                    batch = [live[i] for i in rows if not live[i].future.done()]
                    self._skip(len(rows) - len(batch))
                    if batch:
                        self._run_one(batch)

    def _skip(self, skipped: int) -> None:
        if skipped:
            with self._cond:
                self.stats.queued -= skipped
                self.stats.cancelled += skipped

    def _run_one(self, batch: list[_Work]) -> None:
        results: Sequence[object]
        try:
            results = self._run([w.item for w in batch], [w.params for w in batch])
        except Exception as exc:
            log.exception("batch of %d failed", len(batch))
            results = [exc] * len(batch)
        widest = max(len(w.item) for w in batch)
        with self._cond:
            self.stats.queued -= len(batch)
            self.stats.batches += 1
            self.stats.sequences += len(batch)
            self.stats.tokens += sum(len(w.item) for w in batch)
            self.stats.padded_tokens += widest * len(batch)
        for w, value in zip(batch, results, strict=True):
            w.loop.call_soon_threadsafe(_resolve, w.future, value)
