"""Dynamic batching: many small async requests -> length-sorted batches under a token budget.

A plain `RunBatch` runs in one worker thread. `Stages` (collate, forward) run as a two-stage pipeline: a feeder
thread plans and collates batch i + 1 (pinned memory, non-blocking copy on CUDA) while the model thread runs
batch i, with at most `depth` collated batches alive at once, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import torch

from encoder.batch import plan_batches
from encoder.errors import EncoderError, OverloadedError
from encoder.types import PoolingParams, TokenizedInput

__all__ = ["BatchQueue", "Batcher", "BatcherStats", "Reservation", "RunBatch", "Stages"]

log = logging.getLogger(__name__)

RunBatch = Callable[[list[TokenizedInput], list[PoolingParams]], list[object]]  # one output per input
B = TypeVar("B")
_SHUTTING_DOWN = "the model is shutting down"
_BULK_SHARE = 4  # a background batch holds 1/4 of the token budget: what a search may wait behind


@dataclass(frozen=True, slots=True)
class Stages(Generic[B]):
    """A `RunBatch` split in two so that the next batch is prepared while the model runs this one."""

    collate: Callable[[list[TokenizedInput]], B]  # rows -> the model's input (padded, on the device); feeder thread
    forward: Callable[[B, list[PoolingParams]], list[object]]  # that input -> one output per row; model thread


@dataclass(slots=True)
class _Work:
    item: TokenizedInput
    params: PoolingParams
    future: asyncio.Future[object]
    loop: asyncio.AbstractEventLoop
    background: bool = False  # bulk work (a reindex): runs when no foreground work waits


@dataclass(frozen=True, slots=True)
class _Failed:
    """What the collate stage raised, carried to the batch's futures."""

    error: Exception  # the exception, set on every future of the batch


class Reservation:
    """Room held in a queue for `sequences` that are admitted but still being tokenised.

    A burst of requests all arriving before any of them is tokenised would otherwise all pass a look at the queue
    and be refused only after tokenising (seconds under a burst); holding the room at admission makes the rest
    refuse at once. `submit` takes the room over; leaving the `with` block gives back whatever it did not take.
    """

    __slots__ = ("_give_back", "sequences")

    def __init__(self, sequences: int, give_back: Callable[[int], None]) -> None:
        self.sequences = sequences  # room still held
        self._give_back = give_back  # returns unused room to the queue

    def take(self) -> int:
        """The room held, now handed over to the caller (a second call returns 0)."""
        held, self.sequences = self.sequences, 0
        return held

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *_: object) -> None:
        held = self.take()
        if held:
            self._give_back(held)


@dataclass(slots=True)
class BatcherStats:
    """Counters read by /metrics."""

    queued: int = 0  # sequences admitted and not yet run
    reserved: int = 0  # sequences admitted and still being tokenised (room held, see `Reservation`)
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

    async def submit(
        self,
        items: Sequence[TokenizedInput],
        params: Sequence[PoolingParams],
        reservation: Reservation | None = None,
        *,
        background: bool = False,
    ) -> list[object]:
        """Outputs of `items` (same order); raises `OverloadedError` when admission is full. The room of
        `reservation` (from `reserve`) counts towards them. `background` work yields to other work (and is never
        refused) where the queue supports it."""
        ...

    def reserve(self, sequences: int) -> Reservation:
        """Hold room for `sequences` about to be tokenised, or raise `OverloadedError` at once when there is none
        (admission happens here, before the work; `submit` with the reservation only checks what exceeds it)."""
        ...

    def check_room(self, sequences: int) -> None:
        """Raise `OverloadedError` at once if `sequences` more would be refused now: a cheap look before the
        inputs are tokenised, so an overloaded server refuses without doing that work (`submit` decides)."""
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
    """Runs queued sequences in length-sorted batches: `run` in one worker thread, or `Stages` pipelined.

    Admission is bounded by `max_queue` sequences (queued, collated or running): beyond it `submit` raises
    `OverloadedError` at once. Each pass takes up to `lookahead` queued sequences, sorts them by length and
    splits them into batches of at most `max_batch_size` rows and `max_batch_tokens` padded tokens (and, with
    `max_padding`, at most that fraction of padding per batch). Cancelled work is skipped. Background work
    (`submit(background=True)`: a reindex) waits in its own queue, is not counted against `max_queue` and runs
    one small batch (a quarter of the token budget) at a time only while no other work waits, so a search
    submitted meanwhile waits for one short forward pass at most. With `Stages`, at
    most `depth` collated batches exist at once (the running one included); an error in either stage reaches
    exactly the futures of the batch it happened in. `stop` fails whatever has not run with `EncoderError`.
    """

    def __init__(
        self,
        run: RunBatch | Stages[Any],
        *,
        max_batch_tokens: int,
        max_batch_size: int,
        max_queue: int,
        max_wait_s: float = 0.0,
        overhead_tokens: int | None = None,
        max_padding: float | None = None,
        depth: int = 2,
        name: str = "model",
    ) -> None:
        self.pipelined = isinstance(run, Stages)  # two threads (feeder + model) instead of one
        self._stages: Stages[Any] = run if isinstance(run, Stages) else Stages(list, run)
        self._overhead_tokens = overhead_tokens
        self._max_padding = max_padding
        self._max_wait_s = max_wait_s
        self._max_batch_tokens = max_batch_tokens
        self._max_batch_size = max_batch_size
        self._max_queue = max_queue
        self._lookahead = max(max_batch_size * 4, 64)
        self._depth = max(1, depth)
        self._in_flight = 0  # collated batches not yet finished by the model thread (pipeline only)
        self._handoff: queue.SimpleQueue[tuple[list[_Work], object] | None] = queue.SimpleQueue()
        self._queue: deque[_Work] = deque()
        self._bulk: deque[_Work] = deque()  # background work, taken only when `_queue` is empty
        self._bulk_queued = 0  # background sequences not yet finished (left out of admission)
        self._cond = threading.Condition()
        self._stopped = False
        self.stats = BatcherStats()
        loops = [("feed", self._feed_loop), ("batcher", self._model_loop)] if self.pipelined else []
        self._threads = [
            threading.Thread(target=target, name=f"{role}-{name}", daemon=True)
            for role, target in loops or [("batcher", self._serial_loop)]
        ]
        for thread in self._threads:
            thread.start()

    async def submit(
        self,
        items: Sequence[TokenizedInput],
        params: Sequence[PoolingParams],
        reservation: Reservation | None = None,
        *,
        background: bool = False,
    ) -> list[object]:
        """Queue `items` and wait for their outputs (same order). Cancelling the caller cancels the work.
        `background`: bulk work that yields to everything else (see the class docstring)."""
        loop = asyncio.get_running_loop()
        work = [_Work(it, p, loop.create_future(), loop, background) for it, p in zip(items, params, strict=True)]
        with self._cond:
            held = reservation.take() if reservation is not None else 0
            self.stats.reserved -= held
            if self._stopped:
                raise EncoderError(_SHUTTING_DOWN)
            if not background and len(work) > held:  # more than was reserved (its room is back): check it all
                self.check_room(len(work))
            (self._bulk if background else self._queue).extend(work)
            self.stats.queued += len(work)
            self._bulk_queued += len(work) if background else 0
            self._cond.notify_all()
        try:
            return list(await asyncio.gather(*(w.future for w in work)))
        finally:
            for w in work:
                w.future.cancel()

    def reserve(self, sequences: int) -> Reservation:
        """See `BatchQueue.reserve`."""
        with self._cond:
            if self._stopped:
                raise EncoderError(_SHUTTING_DOWN)
            self.check_room(sequences)
            self.stats.reserved += sequences
        return Reservation(sequences, self._give_back)

    def _give_back(self, sequences: int) -> None:
        with self._cond:
            self.stats.reserved -= sequences

    def check_room(self, sequences: int) -> None:
        """See `BatchQueue.check_room`: queued (but not background) and reserved sequences count. Called without
        the lock for a look (a stale read only defers the decision), and by `reserve` and `submit` under it."""
        queued = self.stats.queued - self._bulk_queued + self.stats.reserved
        if queued + sequences > self._max_queue:
            self.stats.rejected += sequences
            raise OverloadedError(
                f"the server is overloaded: {queued} sequences are queued (limit {self._max_queue}); retry later"
            )

    @property
    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        """Refuse new work, fail what has not run, and join the worker threads (10 s at most in all)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        deadline = time.monotonic() + 10
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._cond:
            left = [*self._queue, *self._bulk]
            self._queue.clear()
            self._bulk.clear()
        self._finish(left, [EncoderError(_SHUTTING_DOWN)] * len(left), ran=False)

    # -- taking work ---------------------------------------------------------------------------------
    def _take(self) -> list[_Work] | None:
        with self._cond:
            while not self._queue and not self._bulk and not self._stopped:
                self._cond.wait()
            if self._queue:
                self._gather_stragglers()
            if self._stopped:
                return None
            self.stats.windows += 1
            if not self._queue:  # background: one batch's worth, then look for other work again
                return self._one_bulk_batch()
            n = min(len(self._queue), self._lookahead)
            return [self._queue.popleft() for _ in range(n)]

    def _one_bulk_batch(self) -> list[_Work]:
        """The next background sequences that fit a quarter of a batch's token budget, at least one (called
        holding the lock): a window of one small batch, so other work waits for one short forward pass at most."""
        taken: list[_Work] = []
        longest = 0
        budget = self._max_batch_tokens // _BULK_SHARE
        while self._bulk and len(taken) < self._max_batch_size:
            length = max(longest, len(self._bulk[0].item))
            if taken and length * (len(taken) + 1) > budget:
                break
            longest = length
            taken.append(self._bulk.popleft())
        return taken

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

    def _batches(self) -> Generator[list[_Work], None, None]:
        """Live batches, window after window, until `stop` (cancelled work is skipped and counted).

        Closing the generator, or `stop`, fails the unrun rest of the current window with `EncoderError`.
        """
        while (window := self._take()) is not None:
            live = self._live(window)
            lengths = [len(w.item) for w in live]
            plan = plan_batches(
                lengths, self._max_batch_tokens, self._max_batch_size, self._overhead_tokens, self._max_padding
            )
            taken = 0
            try:
                while taken < len(plan) and not self._stopped:
                    taken += 1
                    if batch := self._live([live[i] for i in plan[taken - 1]]):
                        yield batch
            finally:
                rest = self._live([live[i] for rows in plan[taken:] for i in rows])
                self._finish(rest, [EncoderError(_SHUTTING_DOWN)] * len(rest), ran=False)

    def _live(self, works: list[_Work]) -> list[_Work]:
        """`works` whose callers still wait; the others leave the queue counts as cancelled."""
        live = [w for w in works if not w.future.done()]
        if skipped := len(works) - len(live):
            with self._cond:
                self._dequeued([w for w in works if w.future.done()])
                self.stats.cancelled += skipped
        return live

    def _dequeued(self, works: list[_Work]) -> None:
        """`works` leave the queue counts (called holding the lock)."""
        self.stats.queued -= len(works)
        self._bulk_queued -= sum(w.background for w in works)

    # -- running -------------------------------------------------------------------------------------
    def _serial_loop(self) -> None:
        with torch.inference_mode():
            for batch in self._batches():
                self._forward(batch, self._collate(batch))

    def _feed_loop(self) -> None:
        """Feeder thread: wait for a free slot, take the next batch, collate it, hand it to the model thread."""
        batches = self._batches()
        try:
            with torch.inference_mode():
                while self._claim_slot() and (batch := next(batches, None)) is not None:
                    self._handoff.put((batch, self._collate(batch)))
        finally:
            batches.close()  # fails the rest of the window when stopping
            self._handoff.put(None)

    def _claim_slot(self) -> bool:
        """Block until fewer than `depth` collated batches exist, then count one more; False once stopped."""
        with self._cond:
            while self._in_flight >= self._depth and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return False
            self._in_flight += 1
            return True

    def _model_loop(self) -> None:
        """Model thread: run each collated batch as it arrives, then free its slot."""
        with torch.inference_mode():
            while (handed := self._handoff.get()) is not None:
                batch, collated = handed
                try:
                    if self._stopped:
                        self._finish(batch, [EncoderError(_SHUTTING_DOWN)] * len(batch), ran=False)
                    elif all(w.future.done() for w in batch):  # every caller left: skip the forward
                        self._live(batch)
                    else:  # rows cancelled since collating still run (the input holds them); answers are dropped
                        self._forward(batch, collated)
                finally:
                    with self._cond:
                        self._in_flight -= 1
                        self._cond.notify_all()

    def _collate(self, batch: list[_Work]) -> object:
        try:
            return self._stages.collate([w.item for w in batch])
        except Exception as exc:
            log.exception("collating a batch of %d failed", len(batch))
            return _Failed(exc)

    def _forward(self, batch: list[_Work], collated: object) -> None:
        results: Sequence[object]
        if isinstance(collated, _Failed):
            results = [collated.error] * len(batch)
        else:
            try:
                results = self._stages.forward(collated, [w.params for w in batch])
            except Exception as exc:
                log.exception("batch of %d failed", len(batch))
                results = [exc] * len(batch)
        self._finish(batch, results, ran=True)

    def _finish(self, batch: list[_Work], results: Sequence[object], *, ran: bool) -> None:
        """Resolve `batch`'s futures with `results` and take them off the queue counts."""
        with self._cond:
            self._dequeued(batch)
            if ran and batch:
                self.stats.batches += 1
                self.stats.sequences += len(batch)
                self.stats.tokens += sum(len(w.item) for w in batch)
                self.stats.padded_tokens += max(len(w.item) for w in batch) * len(batch)
        for w, value in zip(batch, results, strict=True):
            with contextlib.suppress(RuntimeError):  # the caller's event loop has closed: nobody waits
                w.loop.call_soon_threadsafe(_resolve, w.future, value)
