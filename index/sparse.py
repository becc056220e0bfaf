"""Sparse (lexical-weight) index: an inverted index scored by sparse dot product.

Items are ``{token_id: weight}`` dicts (e.g. BGE-M3 lexical weights). Documents are rows of a sparse
matrix; searching multiplies the queries' sparse matrix by the token-major (inverted) matrix with
``scipy.sparse``, so only the postings of the query's tokens are touched. Sums run in float64 and are
returned as float32. A *hit* is a document with a nonzero score (it shares a token with the query); rows
are padded with id -1 / score -inf. Ties are broken by ascending id, so results equal a brute-force dot
product (:class:`~index.exact.ExactSparseIndex`).

Writes append rows to a pending list; the inverted matrix is rebuilt (O(nnz)) at the first search after a
write. Removed documents are masked out and dropped from storage once they exceed ``compact_ratio``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from index.errors import IndexCorruptError
from index.persist import load_snapshot, save_snapshot
from index.slots import RemapIds, SlotMap, empty_result
from index.types import MISSING_ID, MISSING_SCORE, SearchResult, SparseItem
from index.validate import as_allowed_ids, as_ids, as_sparse_items, check_k

__all__ = ["SparseIndex", "SparseRows", "rank_row", "to_csr"]

I64 = npt.NDArray[np.int64]


def to_csr(items: list[SparseItem], n_cols: int | None = None) -> sp.csr_matrix:
    """float64 CSR ``(len(items), n_cols)`` of ``{token_id: weight}`` dicts (zero weights dropped).

    ``n_cols`` defaults to one past the largest token id; larger ids are dropped when it is given.
    """
    lens = np.fromiter((len(it) for it in items), np.int64, len(items))
    cols = np.fromiter((t for it in items for t in it), np.int64, int(lens.sum()))
    vals = np.fromiter((w for it in items for w in it.values()), np.float64, int(lens.sum()))
    rows = np.repeat(np.arange(len(items)), lens)
    width = int(cols.max(initial=-1)) + 1 if n_cols is None else n_cols
    keep = (vals != 0) & (cols < width)
    return sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(len(items), max(width, 1)))


def rank_row(cols: I64, vals: npt.NDArray[np.float64], ids: I64, k: int) -> tuple[npt.NDArray[np.float32], I64]:
    """Best ``k`` of one query's scored documents: score descending, then id ascending; padded.

    ``cols`` are positions into ``ids`` (external ids), ``vals`` their scores; zero scores are not hits.
    """
    keep = vals != 0
    cols, vals = cols[keep], vals[keep]
    if cols.size > k:
        part = np.argpartition(-vals, k - 1)[:k]
        thr = vals[part].min()
        sel = vals >= thr
        cols, vals = cols[sel], vals[sel]
    order = np.lexsort((ids[cols], -vals))[:k]
    scores = np.full(k, MISSING_SCORE, np.float32)
    out = np.full(k, MISSING_ID, np.int64)
    scores[: order.size], out[: order.size] = vals[order], ids[cols[order]]
    return scores, out


def _widen(block: sp.csr_matrix, width: int) -> sp.csr_matrix:
    return sp.csr_matrix((block.data, block.indices, block.indptr), shape=(block.shape[0], width))


class SparseRows:
    """Append-only CSR rows (one per slot) with a cached token-major copy for scoring."""

    def __init__(self) -> None:
        self._parts: list[sp.csr_matrix] = []  # row blocks in slot order, merged lazily
        self._inverted: sp.csr_matrix | None = None  # (vocab, n_slots) float64, None when stale

    def append(self, block: sp.csr_matrix) -> None:
        """Add rows for the next slots."""
        self._parts.append(block)
        self._inverted = None

    def matrix(self) -> sp.csr_matrix:
        """All rows as one float64 CSR ``(n_slots, vocab)``."""
        if len(self._parts) != 1:
            width = max((p.shape[1] for p in self._parts), default=1)
            blocks = [sp.csr_matrix((p.data, p.indices, p.indptr), shape=(p.shape[0], width)) for p in self._parts]
            self._parts = [sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, 1))]
        return self._parts[0]

    def inverted(self) -> sp.csr_matrix:
        """Token-major CSR ``(vocab, n_slots)``: row ``t`` is the posting list of token ``t``."""
        if self._inverted is None:
            self._inverted = self.matrix().T.tocsr()
        return self._inverted

    def keep_rows(self, rows: I64) -> None:
        """Drop every row not in ``rows`` (compaction), preserving order."""
        self._parts = [self.matrix()[rows]]
        self._inverted = None


class SparseIndex(RemapIds):
    """``{token_id: weight}`` documents under external int64 ids, scored by sparse dot product."""

    family = "sparse"

    def __init__(self, compact_ratio: float = 0.3) -> None:
        self.compact_ratio = compact_ratio  # dead-row fraction that triggers compaction
        self.seq: int | None = None  # sequence number of the last write in the loaded snapshot
        self._slots = SlotMap()  # external id <-> row
        self._rows = SparseRows()  # the documents, one CSR row per slot

    def __len__(self) -> int:
        return len(self._slots)

    def add(self, ids: Any, items: Any) -> None:
        """Insert or replace (upsert) ``items`` (list of ``{token_id: weight}``) under ``ids`` (n,)."""
        docs = as_sparse_items(items)
        keys = as_ids(ids, len(docs))
        if docs:
            self._slots.assign(keys)
            self._rows.append(to_csr(docs))
            self._maybe_compact()

    def remove(self, ids: Any) -> None:
        """Remove ``ids`` (unknown ids are ignored); removed ids are never returned again."""
        if self._slots.release(as_ids(ids)).size:
            self._maybe_compact()

    def _maybe_compact(self) -> None:
        if self._slots.n_dead > self.compact_ratio * max(1, self._slots.n_slots):
            slots, keep = self._slots.compacted()
            self._rows.keep_rows(keep)
            self._slots = slots

    def search(self, queries: Any, k: int, allowed_ids: Any = None) -> SearchResult:
        """Best ``k`` documents per query by sparse dot product, optionally only among ``allowed_ids``.

        Args:
            queries: list of ``{token_id: weight}`` dicts.
            k: hits per query (>= 1).
            allowed_ids: None, or int64 (m,) ids a hit may have.

        Returns:
            ``SearchResult(scores float32 (n_queries, k), ids int64 (n_queries, k))``; only documents with a
            nonzero score are hits, the rest of a row is id -1 / score -inf.
        """
        qs = as_sparse_items(queries, "queries")
        k, allowed = check_k(k), as_allowed_ids(allowed_ids)
        if len(self) == 0 or not qs:
            return empty_result(len(qs), k)
        inverted = self._rows.inverted()
        scores = (to_csr(qs, inverted.shape[0]) @ inverted).tocsr()
        ok = self._slots.live_mask()
        if allowed is not None:
            ok = np.zeros_like(ok)
            ok[self._slots.slots_of(allowed)] = True
        ids = self._slots.slot_ids
        out = empty_result(len(qs), k)
        for i in range(len(qs)):
            lo, hi = scores.indptr[i], scores.indptr[i + 1]
            cols, vals = scores.indices[lo:hi].astype(np.int64), scores.data[lo:hi]
            mask = ok[cols]
            out.scores[i], out.ids[i] = rank_row(cols[mask], vals[mask], ids, k)
        return out

    def save(self, directory: str | os.PathLike[str], seq: int | None = None) -> None:
        """Atomically write this index to ``directory`` recording ``seq``, the last write it includes."""
        m = self._rows.matrix()
        arrays = {"slot_ids": self._slots.slot_ids, "indptr": m.indptr, "indices": m.indices, "data": m.data}
        meta = {"count": len(self), "vocab": int(m.shape[1]), "compact_ratio": self.compact_ratio}
        save_snapshot(directory, self.family, seq, meta, arrays)
        self.seq = seq

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> SparseIndex:
        """Read an index saved by :meth:`save`; raises ``IndexCorruptError`` naming a damaged file."""
        snap = load_snapshot(directory, cls.family)
        obj = cls(float(snap.require("compact_ratio")))
        slot_ids = snap.array("slot_ids")
        try:
            m = sp.csr_matrix(
                (snap.array("data"), snap.array("indices"), snap.array("indptr")),
                shape=(slot_ids.shape[0], int(snap.require("vocab"))),
            )
            m.check_format(full_check=True)
        except ValueError as e:
            raise IndexCorruptError(snap.paths["indptr"], f"inconsistent CSR arrays ({e})") from e
        obj._slots, obj.seq = SlotMap(slot_ids), snap.seq
        obj._rows.append(m)
        return obj
