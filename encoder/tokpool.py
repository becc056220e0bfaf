"""Parallel tokenisation that returns packed ids: one int32 buffer plus lengths per chunk of texts.

A GPU encoder is fed by its tokeniser: one Python thread tokenising ~120-token texts tops out near the
model's forward rate on small models, so large jobs are cut into chunks that run in parallel, either

* ``"process"``: worker processes (spawned, each with its own copy of the fast tokenizer), or
* ``"thread"``: threads calling the tokenizers library's batch API, which releases the GIL.

Each chunk comes back as :class:`PackedIds` (two numpy arrays): pickling one buffer per chunk costs little,
while per-text lists through a process pool are bounded by pickling. Results equal the Hugging Face
tokenizer's ``tok(texts, truncation=..., max_length=...)["input_ids"]`` (tested).
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from encoder.types import TokenizeBackend, TruncationSide

__all__ = ["PackedIds", "TokenizeBackend", "TokenizePool", "encode_packed"]


@dataclass(frozen=True, slots=True)
class PackedIds:
    """Token ids of n texts back to back."""

    ids: npt.NDArray[np.int32]  # int32 (total,): text i is ids[offsets[i]:offsets[i + 1]]
    lengths: npt.NDArray[np.int64]  # int64 (n,): tokens per text

    @property
    def offsets(self) -> npt.NDArray[np.int64]:
        """int64 (n + 1,) start of each text, then the total.

        >>> PackedIds(np.array([1, 2, 3], np.int32), np.array([2, 1])).offsets.tolist()
        [0, 2, 3]
        """
        return np.concatenate(([0], np.cumsum(self.lengths, dtype=np.int64)))

    def to_lists(self) -> list[list[int]]:
        """One list of ids per text.

        >>> PackedIds(np.array([1, 2, 3], np.int32), np.array([2, 0, 1])).to_lists()
        [[1, 2], [], [3]]
        """
        flat, bounds = self.ids.tolist(), self.offsets.tolist()
        return [flat[a:b] for a, b in itertools.pairwise(bounds)]

    @staticmethod
    def concat(parts: Sequence[PackedIds]) -> PackedIds:
        """The texts of every part, in order."""
        if not parts:
            return PackedIds(np.zeros(0, np.int32), np.zeros(0, np.int64))
        return PackedIds(np.concatenate([p.ids for p in parts]), np.concatenate([p.lengths for p in parts]))


def encode_packed(
    tokenizer: Tokenizer, texts: Sequence[str], add_special_tokens: bool, truncate: int | None, side: TruncationSide
) -> PackedIds:
    """Tokenise `texts` with a `tokenizers.Tokenizer` (configured here: no padding, the given truncation)."""
    tokenizer.no_padding()
    if truncate is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(max_length=truncate, direction=side)
    batch = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    encodings = batch(list(texts), add_special_tokens=add_special_tokens)
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
    flat = itertools.chain.from_iterable(e.ids for e in encodings)
    return PackedIds(np.fromiter(flat, dtype=np.int32, count=int(lengths.sum())), lengths)


_worker_tokenizer: Tokenizer | None = None  # each process's own tokenizer (process backend)
_thread_state = threading.local()  # each thread's own tokenizer (thread backend): truncation is state


def _init_worker(spec: str) -> None:
    global _worker_tokenizer
    _worker_tokenizer = Tokenizer.from_str(spec)


def _process_chunk(texts: list[str], add_special_tokens: bool, truncate: int | None, side: str) -> PackedIds:
    if _worker_tokenizer is None:
        raise RuntimeError("tokenisation worker used before its initialiser ran")
    return encode_packed(_worker_tokenizer, texts, add_special_tokens, truncate, side)  # type: ignore[arg-type]


class TokenizePool:
    """Tokenises large batches of texts in parallel chunks; small batches run in the calling thread.

    `spec` is the fast tokenizer's JSON (`hf.backend_tokenizer.to_str()`); `workers` processes or threads
    each take `chunk` texts at a time. Thread-safe; `close()` stops the workers.
    """

    def __init__(self, spec: str, backend: TokenizeBackend, workers: int, chunk: int = 1024) -> None:
        self.backend = backend  # where chunks run
        self.workers = max(1, workers)  # parallel chunks
        self.chunk = max(1, chunk)  # texts per chunk; batches no larger run inline
        self._spec = spec
        self._local = Tokenizer.from_str(spec)  # inline path (under _lock)
        self._lock = threading.Lock()
        self._executor: Executor | None = None  # started on first use

    def encode(
        self,
        texts: Sequence[str],
        *,
        add_special_tokens: bool = True,
        truncate: int | None = None,
        side: TruncationSide = "right",
    ) -> PackedIds:
        """Token ids of `texts` (truncated to `truncate` tokens from `side` when given), in order."""
        if len(texts) <= self.chunk:
            with self._lock:
                return encode_packed(self._local, texts, add_special_tokens, truncate, side)
        executor = self._start()
        fn: Any = _process_chunk if self.backend == "process" else self._thread_chunk
        futures = [
            executor.submit(fn, list(texts[i : i + self.chunk]), add_special_tokens, truncate, side)
            for i in range(0, len(texts), self.chunk)
        ]
        return PackedIds.concat([f.result() for f in futures])

    def _thread_chunk(self, texts: list[str], add_special_tokens: bool, truncate: int | None, side: str) -> PackedIds:
        tok = getattr(_thread_state, "tokenizer", None)
        if tok is None or getattr(_thread_state, "spec", None) is not self._spec:
            tok = _thread_state.tokenizer = Tokenizer.from_str(self._spec)
            _thread_state.spec = self._spec
        return encode_packed(tok, texts, add_special_tokens, truncate, side)  # type: ignore[arg-type]

    def _start(self) -> Executor:
        with self._lock:
            if self._executor is None:
                if self.backend == "process":
                    ctx = multiprocessing.get_context("spawn")  # no fork of a threaded, torch-holding parent
                    self._executor = ProcessPoolExecutor(
                        self.workers, mp_context=ctx, initializer=_init_worker, initargs=(self._spec,)
                    )
                else:
                    self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="tokenize")
            return self._executor

    def close(self) -> None:
        """Stop the workers (a later `encode` starts them again)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
