"""Multi-vector (late-interaction, MaxSim) index: float16 token storage, exact or two-stage search.

Items are documents given as float32 ``(m_i, dim)`` token vectors; queries are the same (``(q_i, dim)``
each). Scores are ColBERT MaxSim (sum over query vectors of the best dot product), computed in float32 by
:func:`poolers.maxsim.maxsim_packed` over the stored float16 vectors.

* ``exact``: every live document is scored (chunked matmul + segmented max; ``dtype="bfloat16"`` scans a
  bfloat16 working copy of the store with the CPU's bf16 matmul).
* ``two_stage``: :class:`~index.token_candidates.TokenCandidates` proposes documents from compressed token
  codes (``first_stage``: IVF-PQ or binary sign codes), full MaxSim over the candidates' stored vectors reranks
  them, in the same ``dtype`` as the exact scan (bfloat16 by default: the candidates are copied from the bf16
  working copy, which is ~10x cheaper on this CPU than converting float16 per query; ``dtype="float32"``
  rescores from float16 in float32 and keeps no working copy).
* ``compressed``: the same two stages with only the token codes in RAM (:mod:`index.compressed`): the float16
  vectors live in an append-only memory-mapped file (:class:`~index.token_file.TokenFile`, in ``directory`` or a
  private temporary file) read for the candidates a query rescores (in file order, scored on the float16 rows as
  read: :mod:`index.rescore`); removals are lazy (tombstones, dropped at
  compaction); the codes retrain beside the serving index when the data drifted or grew
  (:meth:`MultiVectorIndex.retrain_plan` / :meth:`MultiVectorIndex.retrain_apply`).

``auto`` is exact below ``auto_exact_max`` documents, two-stage above, and compressed from ``auto_compressed_min``
stored tokens (the heap rows move to the file once; the trained codes are kept).

With ``pool_factor > 1`` each document is token-pooled on ``add`` (:func:`poolers.token_pooling.pool_tokens`)
and only the pooled vectors are stored, indexed and scored.

Removal (or replacement) tombstones a document (never returned again) and drops its tokens from the candidate
index (``compressed``: at compaction); once dead rows exceed ``compact_ratio`` of the store, compaction rewrites
the float16 rows of the live documents alone and renumbers their slots (the candidate codes are re-added under the
new slots with the trained quantizers kept; compressed: renamed in place), so a stream of upserts holds memory
bounded by the live corpus. Not thread-safe: the caller serialises writes (a retrain's heavy part excepted).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np
import numpy.typing as npt

from index import compressed_io
from index.compressed import CompressedCodes, Retrained, RetrainPlan
from index.config import MultiVectorConfig, config_from_meta, config_to_meta
from index.device import torch_device
from index.errors import IndexConfigError, IndexCorruptError
from index.persist import load_snapshot, save_snapshot
from index.rescore import maxsim_float16
from index.slots import RemapIds, SlotMap, empty_result, finalize, topk_rows
from index.threads import kernel_threads
from index.token_candidates import TokenCandidates
from index.token_file import TokenFile
from index.token_store import TokenStore
from index.types import MISSING_SCORE, SearchResult
from index.validate import as_allowed_ids, as_ids, as_matrix, as_multivectors, check_k
from poolers.maxsim import MaxSimDType, maxsim_packed
from poolers.token_pooling import pool_tokens

faiss: Any = _faiss  # faiss's bundled stubs lag its SWIG API (SearchParameters*, DirectMap, ...)

__all__ = ["MultiVectorIndex", "pad_queries"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def pad_queries(queries: list[F32]) -> tuple[F32, npt.NDArray[np.bool_]]:
    """Stack queries of different lengths: ``(float32 (B, q_max, dim), mask bool (B, q_max))``."""
    q_max = max(q.shape[0] for q in queries)
    out = np.zeros((len(queries), q_max, queries[0].shape[1]), np.float32)
    mask = np.zeros((len(queries), q_max), bool)
    for i, q in enumerate(queries):
        out[i, : q.shape[0]], mask[i, : q.shape[0]] = q, True
    return out, mask


def score_slots(
    store: TokenStore | TokenFile, queries: list[F32], slots: I64 | None, dtype: MaxSimDType = "float32"
) -> tuple[F32, I64]:
    """Exact MaxSim of every query against ``slots`` (None: every occupied slot), matmul in ``dtype``.

    A compressed index's candidates (``store`` a :class:`TokenFile`, ``dtype`` bfloat16, on the CPU) are read in
    file order and scored by :func:`~index.rescore.maxsim_float16` on their float16 rows as stored (no conversion).

    Returns ``(float32 (B, n), slots int64 (n,))`` with column ``j`` scoring ``slots[j]``.
    """
    tokens: Any
    device = torch_device()
    if isinstance(store, TokenFile) and slots is not None and dtype == "bfloat16" and device is None:
        slots = np.sort(slots)  # reads in file order
        rows, offsets = store.gather(slots)
        q, mask = pad_queries(queries)
        return maxsim_float16(q, mask, rows, offsets), slots
    if slots is None:
        slots, offsets = store.occupied()
        tokens = store.scan_tokens(dtype == "bfloat16")
    else:
        tokens, offsets = store.gather_scan(slots, dtype == "bfloat16")
    if slots.size == 0:
        return np.empty((len(queries), 0), np.float32), slots
    q, mask = pad_queries(queries)
    return maxsim_packed(q, tokens, offsets, query_mask=mask, dtype=dtype, device=device), slots


class MultiVectorIndex(RemapIds):
    """Documents of float32 ``(m_i, dim)`` token vectors under external int64 ids, searched by MaxSim.

    ``directory``: where a compressed index keeps its token file (its snapshot directory); None = a private
    temporary file until the first :meth:`save`, whose directory then keeps it."""

    family = "multivector"

    def __init__(
        self, dim: int, config: MultiVectorConfig | None = None, directory: str | os.PathLike[str] | None = None
    ) -> None:
        self.dim = int(dim)  # token vector dimension
        self.config = config or MultiVectorConfig()  # frozen build/search settings
        self.seq: int | None = None  # sequence number of the last write in the loaded snapshot
        self.directory = None if directory is None else Path(directory)  # home of a compressed index's token file
        self._slots = SlotMap()  # external id <-> slot
        self._store: TokenStore | TokenFile = (
            TokenFile(self.dim, self.directory) if self.config.kind == "compressed" else TokenStore(self.dim)
        )  # float16 token rows per slot: in RAM, or in the memory-mapped file (compressed)
        self._cand: TokenCandidates | None = None  # candidate stage, built when two-stage is in use
        self._dead_rows = 0  # token rows of removed or replaced documents still in the store
        self._epoch = 0  # bumped when slots are renumbered or rows move (voids a retrain planned before)
        self._rng = np.random.default_rng(0)  # picks the added vectors the drift signal measures

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def two_stage(self) -> bool:
        """True when searches use the candidate stage (``kind`` and, for ``auto``, the size decide)."""
        kind = self.config.kind
        return kind in ("two_stage", "compressed") or (kind == "auto" and len(self) >= self.config.auto_exact_max)

    @property
    def compressed(self) -> bool:
        """True when only codes are in RAM and the vectors in the token file (``compressed``, or ``auto`` grown)."""
        return isinstance(self._store, TokenFile)

    def memory_bytes(self) -> dict[str, int]:
        """Bytes held: in RAM ``store`` (float16 tokens + extents; compressed: extents only), ``candidates`` (IVF
        codes, ids and centroids), ``ids`` and ``working`` (the bfloat16 copy exact scans use, never saved); on
        disk ``disk`` (the compressed kind's memory-mapped float16 token file; 0 otherwise)."""
        cand = 0 if self._cand is None else self._cand.nbytes()
        store, working = self._store.nbytes(), self._store.working_nbytes()
        disk = self._store.disk_bytes() if isinstance(self._store, TokenFile) else 0
        return {"store": store, "candidates": cand, "ids": self._slots.n_slots * 8, "working": working, "disk": disk}

    def bytes_per_doc(self) -> float:
        """Actual stored bytes per live document (store + ids + first-stage codes and ids, no centroids; RAM and
        disk together), comparable with :func:`index.storage.expected_bytes_per_doc`; 0.0 when empty."""
        if len(self) == 0:
            return 0.0
        return self.ram_bytes_per_doc() + self.memory_bytes()["disk"] / len(self)

    def ram_bytes_per_doc(self) -> float:
        """The part of :meth:`bytes_per_doc` held in RAM (the compressed kind's token file left out)."""
        if len(self) == 0:
            return 0.0
        codes = 0 if self._cand is None else self._cand.code_bytes()
        return (self._store.nbytes() + self._slots.n_slots * 8 + codes) / len(self)

    def add(self, ids: Any, items: Any) -> None:
        """Insert or replace (upsert) documents: ``items`` a list of float32 (m_i, dim) under ``ids`` (n,)."""
        docs = as_multivectors(items, self.dim)
        keys = as_ids(ids, len(docs))
        if not docs:
            return
        if self.config.pool_factor > 1:
            docs = [pool_tokens(d, self.config.pool_factor) for d in docs]
        new, replaced = self._slots.assign(keys)
        self._dead_rows += int(self._store.lengths(replaced).sum())
        self._store.append(docs)
        if isinstance(self._cand, CompressedCodes):  # replaced codes stay until compaction (never proposed)
            tokens = np.concatenate(docs)
            self._cand.add_tokens(tokens, np.repeat(new, [d.shape[0] for d in docs]))
            self._cand.observe(tokens, self._rng)
        elif self._cand is not None and isinstance(self._store, TokenStore):
            self._cand.remove(replaced)
            self._cand.add_from(self._store, new)
        self._maintain()

    def remove(self, ids: Any) -> None:
        """Remove ``ids`` (unknown ids are ignored); removed ids are never returned again."""
        slots = self._slots.release(as_ids(ids))
        self._dead_rows += int(self._store.lengths(slots).sum())
        if slots.size and self._cand is not None and not self.compressed:
            self._cand.remove(slots)
        self._maintain()

    def _maintain(self) -> None:
        if self._dead_rows > self.config.compact_ratio * max(1, self._store.n_tokens):
            self._compact()
        if isinstance(self._store, TokenFile):
            if self._cand is None and len(self):  # first codes, trained on what the file holds
                self._cand = self._plan("asked").run().codes
            return
        if not self.two_stage or len(self) == 0:
            self._cand = None
        elif self._cand is None or self._store.n_tokens > self.config.retrain_growth * self._cand.trained_on:
            self._cand = TokenCandidates.build(self.config, self._store, self._slots.live_slots())
        cfg = self.config
        if cfg.kind == "auto" and cfg.first_stage == "ivf_pq" and self._store.n_tokens >= cfg.auto_compressed_min:
            self._move_to_disk()

    def _renumbering(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Compact the slot map: ``(keep, new_of_old)`` with old live slots in new order and int64 (old n_slots,)
        giving each old slot's new number (-1: dropped)."""
        n_old = self._slots.n_slots
        self._slots, keep = self._slots.compacted()
        new_of_old = np.full(n_old, -1, np.int64)
        new_of_old[keep] = np.arange(keep.size)
        self._epoch += 1
        return keep, new_of_old

    def _compact(self) -> None:
        """Drop the dead documents' rows and slots: live slots are renumbered ``0..n-1`` in the token store, the
        slot map and the candidate codes (two-stage: re-added under the new slots with the quantizers kept;
        compressed: a new token file, and the codes renamed list by list, no re-encoding)."""
        keep, new_of_old = self._renumbering()
        self._dead_rows = 0
        if isinstance(self._store, TokenFile):
            old, self._store = self._store, TokenFile.written(self._store, keep, self.directory)
            old.close()  # a temporary file goes; a directory's stays until the next save no longer names it
            if isinstance(self._cand, CompressedCodes):
                self._cand.renumber(new_of_old)
            return
        self._store.compact(keep)
        if self._cand is not None:
            self._cand.reindex(self._store, self._slots.live_slots())

    def _move_to_disk(self) -> None:
        """``auto`` grew past ``auto_compressed_min``: the live rows move to a token file (the heap store and its
        working copy go) and the trained candidate codes become the compressed codes, renamed, not retrained."""
        keep, new_of_old = self._renumbering()
        self._store = TokenFile.written(self._store, keep, self.directory)
        self._dead_rows = 0
        if self._cand is not None:
            self._cand = CompressedCodes.adopt(self._cand, self._store.tokens, self._rng)
            self._cand.renumber(new_of_old)

    def attach(self, directory: str | os.PathLike[str]) -> None:
        """Keep the token file in ``directory`` from now on (copied there when it is elsewhere): an index loaded
        from an import's scratch copy moves into its collection's snapshot directory."""
        self.directory = Path(directory)
        if isinstance(self._store, TokenFile):
            self._store.move_to(self.directory)

    # -- compressed: codes trained on a sample, retrained beside the serving index ------------------------
    def train(self, sample: Any, n_tokens: int | None = None) -> None:
        """Compressed kind: train the codes on ``sample`` (float32 (s, dim) token vectors drawn from the corpus to
        come) sized for ``n_tokens`` vectors (default s), before a large streaming build, so each ``add`` only
        encodes its batch. Rows already stored are encoded with the new codes."""
        if not self.compressed:
            raise IndexConfigError("kind", "compressed (train)", self.config.kind)
        x = as_matrix(sample, self.dim, "sample")
        plan = self._plan("asked")
        codes = CompressedCodes.train(self.config, x, n_tokens or x.shape[0])
        self._cand = plan.encode(codes).codes

    def _plan(self, reason: str) -> RetrainPlan:
        if not isinstance(self._store, TokenFile):
            raise IndexConfigError("kind", "compressed (retrain)", self.config.kind)
        live = self._slots.live_slots()
        start, length = self._store.extents()
        return RetrainPlan(self.config, self._store.mapping(), live, start[live], length[live], self._epoch, reason)

    def retrain_plan(self, force: bool = False) -> RetrainPlan | None:
        """Compressed kind: what a retrain of the codes would read, when one is due (the data grew past
        ``retrain_growth`` or drifted past ``drift_ratio``; ``force``: always), else None. Take it while no write
        runs; :meth:`RetrainPlan.run` then needs no lock, and :meth:`retrain_apply` swaps the result in."""
        if not isinstance(self._cand, CompressedCodes) or not len(self):
            return None
        tokens = int(self._store.lengths(self._slots.live_slots()).sum())
        reason = "asked" if force else self._cand.due(self.config, tokens)
        return None if reason is None else self._plan(reason)

    def retrain_apply(self, done: Retrained) -> bool:
        """Swap in codes built by a :class:`RetrainPlan` (exclusive access), after encoding the rows written since
        the plan; False (nothing changes) when a compaction renumbered the slots meanwhile."""
        if done.epoch != self._epoch or not isinstance(self._store, TokenFile):
            return False
        start, length = self._store.extents()
        newer = np.flatnonzero((start >= done.rows) & (length > 0)).astype(np.int64)
        if newer.size:
            tokens, offsets = self._store.gather(newer)
            done.codes.add_tokens(tokens, np.repeat(newer, np.diff(offsets)))
        self._cand = done.codes
        return True

    def retrain(self) -> bool:
        """Retrain the compressed codes now, in this thread (:meth:`retrain_plan` + run + apply)."""
        plan = self.retrain_plan(force=True)
        return plan is not None and self.retrain_apply(plan.run())

    def search(self, queries: Any, k: int, allowed_ids: Any = None) -> SearchResult:
        """Best ``k`` documents per query by MaxSim, optionally only among ``allowed_ids``.

        Args:
            queries: list of float32 (q_i, dim), or float32 (B, q, dim).
            k: hits per query (>= 1).
            allowed_ids: None, or int64 (m,) ids a hit may have.

        Returns:
            ``SearchResult(scores float32 (B, k), ids int64 (B, k))``, best first; -1 / -inf where fewer
            than ``k`` allowed live documents exist (whenever ``k`` exist, ``k`` are returned).
        """
        qs = as_multivectors(queries, self.dim, "queries")
        k, allowed = check_k(k), as_allowed_ids(allowed_ids)
        cand = None if allowed is None else np.sort(self._slots.slots_of(allowed))  # ties: ascending id
        if len(self) == 0 or not qs or (cand is not None and cand.size == 0):
            return empty_result(len(qs), k)
        n_rerank = max(k, self.config.rerank * -(-k // 10))
        with kernel_threads(self.config.search_threads):
            if self._cand is None or (cand is not None and cand.size <= n_rerank):
                return self._exact(qs, k, cand)
            return self._two_stage(self._cand, qs, k, cand, n_rerank)

    def _exact(self, qs: list[F32], k: int, cand: I64 | None) -> SearchResult:
        scores, slots = score_slots(self._store, qs, cand, self.config.dtype)
        if cand is None:
            scores[:, ~self._slots.live_mask()[slots]] = MISSING_SCORE
        top, cols = topk_rows(scores, k)
        return finalize(top, np.where(cols >= 0, slots[np.maximum(cols, 0)], -1), self._slots)

    def _two_stage(
        self, stage: TokenCandidates, qs: list[F32], k: int, cand: I64 | None, n_rerank: int
    ) -> SearchResult:
        live = self._slots.live_mask() if self.compressed else None
        token_k, n_rerank = stage.depth(self.config.token_k, n_rerank)
        proposals = stage.candidates(qs, token_k, n_rerank, cand, live)
        available = len(self) if cand is None else cand.size
        rows = []
        for q, docs in zip(qs, proposals, strict=True):
            if docs.size < min(k, available):
                docs = self._slots.live_slots() if cand is None else cand
            scores, slots = score_slots(self._store, [q], docs, self.config.dtype)
            top, cols = topk_rows(scores, k)
            rows.append((top[0], np.where(cols[0] >= 0, slots[np.maximum(cols[0], 0)], -1)))
        return finalize(np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]), self._slots)

    def save(self, directory: str | os.PathLike[str], seq: int | None = None) -> None:
        """Atomically write this index to ``directory`` recording ``seq``, the last write it includes (compressed:
        the token file's prefix is referenced, not copied, when ``directory`` keeps it)."""
        if isinstance(self._store, TokenFile):
            codes = self._cand if isinstance(self._cand, CompressedCodes) else None
            state = compressed_io.CompressedState(self.dim, self.config, self._slots, self._store, codes)
            self.directory = compressed_io.save(state, Path(directory), seq, self.directory)
            self.seq = seq
            return
        meta: dict[str, Any] = {"dim": self.dim, "config": config_to_meta(self.config), "count": len(self)}
        blobs = {}
        if self._cand is not None:
            meta["trained_on"] = self._cand.trained_on
            write = faiss.serialize_index_binary if self._cand.binary else faiss.serialize_index
            blobs["candidates_binary" if self._cand.binary else "candidates"] = write(self._cand.index)
        arrays = {"slot_ids": self._slots.slot_ids, **self._store.state()}
        save_snapshot(directory, self.family, seq, meta, arrays, blobs)
        self.seq = seq

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> MultiVectorIndex:
        """Read an index saved by :meth:`save`; raises ``IndexCorruptError`` naming a damaged file."""
        snap = load_snapshot(directory, cls.family)
        if "tokens" in snap.meta:  # compressed (or auto grown into it): vectors in the token file
            state = compressed_io.load(snap)
            out = cls(state.dim, state.config, snap.root)
            out._slots, out._store, out._cand, out.seq = state.slots, state.store, state.codes, snap.seq
            out._dead_rows = state.store.n_tokens - int(state.store.lengths(state.slots.live_slots()).sum())
            return out
        obj = cls(int(snap.require("dim")), config_from_meta(MultiVectorConfig, snap.require("config")))
        tokens, start, length = snap.array("tokens"), snap.array("start"), snap.array("length")
        slot_ids = snap.array("slot_ids")
        if tokens.ndim != 2 or tokens.shape[1] != obj.dim or start.shape != length.shape != slot_ids.shape:
            raise IndexCorruptError(snap.paths["tokens"], "token arrays disagree with each other or dim")
        obj._slots = SlotMap(slot_ids)
        obj._store = TokenStore.from_state(obj.dim, tokens, start, length)
        obj._dead_rows = obj._store.n_tokens - int(obj._store.lengths(obj._slots.live_slots()).sum())
        obj.seq = snap.seq
        for name, read in (
            ("candidates", faiss.deserialize_index),
            ("candidates_binary", faiss.deserialize_index_binary),
        ):
            if name in snap.blobs:
                try:
                    index = read(snap.blobs[name])
                except RuntimeError as e:
                    raise IndexCorruptError(snap.paths[name], f"unreadable FAISS index ({e})") from e
                obj._cand = TokenCandidates(index, int(snap.require("trained_on")))
        return obj
