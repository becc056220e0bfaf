"""Compact storage of multi-vector documents: one contiguous float16 token matrix plus per-slot extents.

Slot ``s`` owns ``tokens[start[s] : start[s] + length[s]]``. Documents are appended in slot order, so the
occupied extents tile the matrix without gaps; a removed document keeps its tokens until :meth:`compact`
rewrites the matrix with the live documents alone, renumbered. Memory per stored token vector is
``2 * dim`` bytes plus ``16 / tokens_per_doc`` bytes of extents. Exact bfloat16 scans use a bfloat16 working
copy (another ``2 * dim`` bytes per vector, built on the first full scan and extended on append) so no query
pays a float16 conversion of the whole store.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["TokenStore"]

F16 = npt.NDArray[np.float16]
I64 = npt.NDArray[np.int64]


class TokenStore:
    """float16 ``(T, dim)`` token vectors with int64 ``start``/``length`` per slot."""

    def __init__(self, dim: int) -> None:
        self.dim = dim  # vector dimension
        self._tok: F16 = np.empty((0, dim), np.float16)  # float16 (capacity, dim); first n_tokens used
        self._n_tok = 0  # token rows in use
        self._start: I64 = np.empty(0, np.int64)  # int64 (n_slots,): first row of each slot
        self._len: I64 = np.empty(0, np.int64)  # int64 (n_slots,): rows of each slot, 0 once compacted away
        self._bf16 = torch.empty((0, dim), dtype=torch.bfloat16)  # bfloat16 working copy of tokens[:rows]

    @property
    def n_tokens(self) -> int:
        """Token rows held, including those of removed documents not yet compacted."""
        return self._n_tok

    @property
    def n_slots(self) -> int:
        """Documents ever appended since the last load (slots)."""
        return int(self._start.shape[0])

    @property
    def tokens(self) -> F16:
        """float16 (n_tokens, dim) view of the stored rows."""
        return self._tok[: self._n_tok]

    def scan_tokens(self, bfloat16: bool) -> torch.Tensor:
        """Tokens for a full exact scan: the bfloat16 working copy (built or extended here), or float16."""
        if not bfloat16:
            return torch.from_numpy(self.tokens)
        have = self._bf16.shape[0]
        if have < self._n_tok:
            fresh = torch.from_numpy(self._tok[have : self._n_tok]).to(torch.bfloat16)
            self._bf16 = torch.cat([self._bf16, fresh]) if have else fresh
        return self._bf16[: self._n_tok]

    def gather_scan(self, slots: I64, bfloat16: bool) -> tuple[torch.Tensor, I64]:
        """Rows of ``slots`` packed for scoring: copied from the bfloat16 working copy (``bfloat16``; built on
        first use, so no per-query float16 conversion) or from the float16 matrix. ``(tokens, offsets)``."""
        if not bfloat16:
            tokens, offsets = self.gather(slots)
            return torch.from_numpy(tokens), offsets
        work, lens = self.scan_tokens(True), self._len[slots]
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        runs = [work[a : a + n] for a, n in zip(self._start[slots].tolist(), lens.tolist(), strict=True)]
        return (torch.cat(runs) if runs else work[:0]), offsets

    def working_nbytes(self) -> int:
        """Bytes of the bfloat16 working copy (0 until an exact bfloat16 scan built it)."""
        return int(self._bf16.numel() * 2)

    def lengths(self, slots: I64) -> I64:
        """int64 (len(slots),): token count of each slot."""
        return self._len[slots]

    def nbytes(self) -> int:
        """Bytes held by the used part of the store (tokens and extents)."""
        return int(self._n_tok * self.dim * 2 + self._start.nbytes + self._len.nbytes)

    def append(self, docs: list[npt.NDArray[np.float32]]) -> None:
        """Store ``docs`` (float (m_i, dim) each) in the next ``len(docs)`` slots."""
        lens = np.fromiter((d.shape[0] for d in docs), np.int64, len(docs))
        total = int(lens.sum())
        if self._n_tok + total > self._tok.shape[0]:
            grown = np.empty((max(2 * self._tok.shape[0], self._n_tok + total, 1024), self.dim), np.float16)
            grown[: self._n_tok] = self._tok[: self._n_tok]
            self._tok = grown
        if docs:
            self._tok[self._n_tok : self._n_tok + total] = np.concatenate(docs)
        starts = self._n_tok + np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        self._start = np.concatenate([self._start, starts])
        self._len = np.concatenate([self._len, lens])
        self._n_tok += total

    def occupied(self) -> tuple[I64, I64]:
        """``(slots, offsets)``: slots holding rows in storage order, and int64 offsets (len(slots)+1,)."""
        slots = np.flatnonzero(self._len > 0).astype(np.int64)
        return slots, np.append(self._start[slots], self._n_tok).astype(np.int64)

    def gather(self, slots: I64) -> tuple[F16, I64]:
        """Rows of ``slots`` packed: ``(float16 (sum m, dim), offsets int64 (len(slots)+1,))``."""
        lens = self._len[slots]
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        rows = np.repeat(self._start[slots] - offsets[:-1], lens) + np.arange(offsets[-1])
        return self._tok[rows], offsets

    def compact(self, slots: I64) -> None:
        """Keep only ``slots`` (int64, each holding rows), renumbered: new slot ``i`` is old ``slots[i]``.

        The matrix is rewritten with their rows alone and the extents shrink to ``len(slots)``."""
        tokens, offsets = self.gather(slots)
        self._tok, self._n_tok = tokens, int(offsets[-1])
        self._bf16 = torch.empty((0, self.dim), dtype=torch.bfloat16)
        self._start, self._len = offsets[:-1].copy(), np.diff(offsets)

    def state(self) -> dict[str, npt.NDArray[np.generic]]:
        """Arrays to persist: ``tokens`` float16 (T, dim), ``start`` and ``length`` int64 (n_slots,)."""
        return {"tokens": self.tokens, "start": self._start, "length": self._len}

    @classmethod
    def from_state(cls, dim: int, tokens: F16, start: I64, length: I64) -> TokenStore:
        """Rebuild a store from :meth:`state` arrays (shapes already verified by the caller)."""
        store = cls(dim)
        store._tok = np.ascontiguousarray(tokens, dtype=np.float16)
        store._n_tok = int(tokens.shape[0])
        store._start = np.asarray(start, np.int64)
        store._len = np.asarray(length, np.int64)
        return store
