"""Exact reference indexes: brute force beside each approximate family, the oracle tests compare against.

Same verbs as the main families (``add``, ``search``, ``remove``, ``len``, ``save``, ``load``); plain
numpy (and :mod:`poolers.maxsim` for MaxSim), no FAISS, no candidate stage, no cleverness.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from index.bm25 import tokenize
from index.config import BM25Config, config_from_meta, config_to_meta
from index.persist import load_snapshot, save_snapshot
from index.slots import RemapIds, SlotMap, empty_result, finalize, topk_rows
from index.sparse import rank_row, to_csr
from index.types import DEFAULT_METRIC, Metric, SearchResult
from index.validate import (
    as_allowed_ids,
    as_ids,
    as_matrix,
    as_multivectors,
    as_sparse_items,
    as_texts,
    check_k,
)
from poolers.maxsim import maxsim

__all__ = ["ExactBM25Index", "ExactDenseIndex", "ExactMultiVectorIndex", "ExactSparseIndex"]

F32 = npt.NDArray[np.float32]


def _split(arr: npt.NDArray[Any], lengths: npt.NDArray[np.int64]) -> list[npt.NDArray[Any]]:
    """Cut ``arr`` into ``len(lengths)`` consecutive pieces of the given lengths."""
    cuts = np.cumsum(lengths)
    return [arr[a:b] for a, b in zip(np.concatenate([[0], cuts[:-1]]), cuts, strict=True)]


class _ExactBase(RemapIds):
    """Slot bookkeeping shared by the exact indexes: items live in ``self._items[slot]``."""

    family: ClassVar[str]

    def __init__(self) -> None:
        self.seq: int | None = None  # sequence number of the last write in the loaded snapshot
        self._slots = SlotMap()  # external id <-> slot
        self._items: list[Any] = []  # item per slot, None once removed

    def __len__(self) -> int:
        return len(self._slots)

    def _put(self, ids: Any, items: list[Any]) -> None:
        _, replaced = self._slots.assign(as_ids(ids, len(items)))
        for s in replaced.tolist():
            self._items[s] = None
        self._items.extend(items)

    def remove(self, ids: Any) -> None:
        """Remove ``ids``; unknown ids are ignored."""
        for s in self._slots.release(as_ids(ids)).tolist():
            self._items[s] = None

    def _candidates(self, allowed_ids: Any) -> npt.NDArray[np.int64]:
        allowed = as_allowed_ids(allowed_ids)
        return self._slots.live_slots() if allowed is None else np.sort(self._slots.slots_of(allowed))

    def _rank(self, scores: npt.NDArray[np.floating], slots: npt.NDArray[np.int64], k: int) -> SearchResult:
        """Top ``k`` of ``scores`` (n_queries, len(slots)) as a result with external ids."""
        top, cols = topk_rows(scores, k)
        return finalize(top, np.where(cols >= 0, slots[np.maximum(cols, 0)], -1), self._slots)

    def _live_items(self) -> tuple[npt.NDArray[np.int64], list[Any]]:
        slots = self._slots.live_slots()
        return self._slots.slot_ids[slots], [self._items[s] for s in slots.tolist()]


class ExactDenseIndex(_ExactBase):
    """Brute-force cosine (inner product with ``metric="ip"``) over float32 ``(n, dim)`` vectors."""

    family = "exact_dense"

    def __init__(self, dim: int, metric: Metric = DEFAULT_METRIC) -> None:
        super().__init__()
        self.dim, self.metric = dim, metric  # vector dimension; similarity

    def _prep(self, x: F32) -> F32:
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30) if self.metric == "cosine" else x

    def add(self, ids: Any, items: Any) -> None:
        """Upsert float32 (n, dim) vectors."""
        self._put(ids, list(self._prep(as_matrix(items, self.dim))))

    def search(self, queries: Any, k: int, allowed_ids: Any = None) -> SearchResult:
        """Exact best ``k`` per query: float32 (n_queries, dim) -> (scores, ids) (n_queries, k)."""
        q, k = self._prep(as_matrix(queries, self.dim, "queries")), check_k(k)
        slots = self._candidates(allowed_ids)
        if slots.size == 0:
            return empty_result(q.shape[0], k)
        return self._rank(q @ np.stack([self._items[s] for s in slots.tolist()]).T, slots, k)

    def save(self, directory: str | os.PathLike[str], seq: int | None = None) -> None:
        """Write ids and vectors to ``directory``."""
        ids, items = self._live_items()
        vectors = np.stack(items) if items else np.empty((0, self.dim), np.float32)
        meta = {"dim": self.dim, "metric": self.metric}
        save_snapshot(directory, self.family, seq, meta, {"ids": ids, "vectors": vectors})
        self.seq = seq

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ExactDenseIndex:
        """Read an index saved by :meth:`save`."""
        snap = load_snapshot(directory, cls.family)
        obj = cls(int(snap.require("dim")), snap.require("metric"))
        obj._put(snap.array("ids"), list(snap.array("vectors")))
        obj.seq = snap.seq
        return obj


class ExactMultiVectorIndex(_ExactBase):
    """Exact MaxSim (:func:`poolers.maxsim.maxsim`, padded) over every document, float32 storage."""

    family = "exact_multivector"

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim  # token vector dimension

    def add(self, ids: Any, items: Any) -> None:
        """Upsert documents: a list of float32 (m_i, dim)."""
        self._put(ids, as_multivectors(items, self.dim))

    def search(self, queries: Any, k: int, allowed_ids: Any = None) -> SearchResult:
        """Exact MaxSim best ``k``: queries a list of float32 (q_i, dim) -> (B, k)."""
        qs, k = as_multivectors(queries, self.dim, "queries"), check_k(k)
        slots = self._candidates(allowed_ids)
        if slots.size == 0 or not qs:
            return empty_result(len(qs), k)
        docs = [self._items[s] for s in slots.tolist()]
        m = max(d.shape[0] for d in docs)
        pad = np.zeros((len(docs), m, self.dim), np.float32)
        mask = np.zeros((len(docs), m), bool)
        for i, d in enumerate(docs):
            pad[i, : d.shape[0]], mask[i, : d.shape[0]] = d, True
        scores = np.stack([maxsim(q, pad, mask).numpy() for q in qs])
        return self._rank(scores, slots, k)

    def save(self, directory: str | os.PathLike[str], seq: int | None = None) -> None:
        """Write ids, lengths and concatenated float32 vectors to ``directory``."""
        ids, items = self._live_items()
        lengths = np.array([d.shape[0] for d in items], np.int64)
        tokens = np.concatenate(items) if items else np.empty((0, self.dim), np.float32)
        arrays = {"ids": ids, "lengths": lengths, "tokens": tokens}
        save_snapshot(directory, self.family, seq, {"dim": self.dim}, arrays)
        self.seq = seq

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ExactMultiVectorIndex:
        """Read an index saved by :meth:`save`."""
        snap = load_snapshot(directory, cls.family)
        obj = cls(int(snap.require("dim")))
        cuts = np.cumsum(snap.array("lengths"))[:-1]
        obj._put(
            snap.array("ids"),
            np.split(snap.array("tokens"), cuts) if cuts.size or len(snap.array("ids")) else [],
        )
        obj.seq = snap.seq
        return obj


class ExactSparseIndex(_ExactBase):
    """Brute-force sparse dot product: every live document's row times the dense query vector."""

    family = "exact_sparse"

    def add(self, ids: Any, items: Any) -> None:
        """Upsert ``{token_id: weight}`` documents."""
        self._put(ids, as_sparse_items(items))

    def search(self, queries: Any, k: int, allowed_ids: Any = None) -> SearchResult:
        """Best ``k`` by dot product over all candidates; only nonzero scores are hits."""
        qs, k = as_sparse_items(queries, "queries"), check_k(k)
        slots = self._candidates(allowed_ids)
        out = empty_result(len(qs), k)
        if slots.size == 0:
            return out
        docs = to_csr([self._items[s] for s in slots.tolist()])
        ids = self._slots.slot_ids[slots]
        for i, q in enumerate(qs):
            dense = np.zeros(docs.shape[1], np.float64)
            for t, w in q.items():
                if t < dense.size:
                    dense[t] = w
            scores = docs @ dense
            out.scores[i], out.ids[i] = rank_row(np.arange(ids.size), scores, ids, k)
        return out

    def save(self, directory: str | os.PathLike[str], seq: int | None = None) -> None:
        """Write ids and (token, weight) pairs to ``directory``."""
        ids, items = self._live_items()
        lens = np.array([len(it) for it in items], np.int64)
        toks = np.array([t for it in items for t in it], np.int64)
        ws = np.array([w for it in items for w in it.values()], np.float64)
        save_snapshot(directory, self.family, seq, {}, {"ids": ids, "lengths": lens, "tokens": toks, "weights": ws})
        self.seq = seq

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ExactSparseIndex:
        """Read an index saved by :meth:`save`."""
        snap = load_snapshot(directory, cls.family)
        obj = cls()
        lengths = snap.array("lengths")
        toks, ws = _split(snap.array("tokens"), lengths), _split(snap.array("weights"), lengths)
        obj._put(
            snap.array("ids"),
            [dict(zip(t.tolist(), w.tolist(), strict=True)) for t, w in zip(toks, ws, strict=True)],
        )
        obj.seq = snap.seq
        return obj


class ExactBM25Index(_ExactBase):
    """BM25 (Lucene variant) written out in numpy over the same tokens as :class:`~index.bm25.BM25Index`."""

    family = "exact_bm25"

    def __init__(self, config: BM25Config | None = None) -> None:
        super().__init__()
        self.config = config or BM25Config()  # BM25 parameters and tokenization

    def add(self, ids: Any, items: Any) -> None:
        """Upsert texts."""
        self._put(ids, as_texts(items))

    def _scores(self, terms: list[str], docs: list[list[str]]) -> npt.NDArray[np.float64]:
        n, k1, b = len(docs), self.config.k1, self.config.b
        lengths = np.array([len(d) for d in docs], np.float64)
        avg = max(lengths.mean(), 1e-9)
        out = np.zeros(n, np.float64)
        for term in terms:
            tf = np.array([d.count(term) for d in docs], np.float64)
            df = float((tf > 0).sum())
            if df:
                idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
                out += idf * tf / (k1 * ((1 - b) + b * lengths / avg) + tf)
        return out

    def search(self, queries: Any, k: int, allowed_ids: Any = None) -> SearchResult:
        """Best ``k`` by BM25 over all live documents (statistics over all live, filter applied after)."""
        qs, k = as_texts(queries, "queries"), check_k(k)
        allowed = as_allowed_ids(allowed_ids)
        slots = self._slots.live_slots()
        out = empty_result(len(qs), k)
        if slots.size == 0:
            return out
        docs = tokenize([self._items[s] for s in slots.tolist()], self.config)
        ids = self._slots.slot_ids[slots]
        ok = np.ones(ids.size, bool) if allowed is None else np.isin(ids, allowed)
        for i, terms in enumerate(tokenize(qs, self.config)):
            scores = np.where(ok, self._scores(terms, docs), 0.0)
            out.scores[i], out.ids[i] = rank_row(np.arange(ids.size), scores, ids, k)
        return out

    def save(self, directory: str | os.PathLike[str], seq: int | None = None) -> None:
        """Write ids and texts (as a JSON blob) to ``directory``."""
        ids, items = self._live_items()
        blob = np.frombuffer(json.dumps(items).encode(), np.uint8)
        meta = {"config": config_to_meta(self.config)}
        save_snapshot(directory, self.family, seq, meta, {"ids": ids}, {"texts": blob})
        self.seq = seq

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ExactBM25Index:
        """Read an index saved by :meth:`save`."""
        snap = load_snapshot(directory, cls.family)
        obj = cls(config_from_meta(BM25Config, snap.require("config")))
        obj._put(snap.array("ids"), json.loads(snap.blob("texts").tobytes().decode()))
        obj.seq = snap.seq
        return obj
