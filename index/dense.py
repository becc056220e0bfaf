"""Dense vector index over FAISS: exact, HNSW or IVF (Flat / PQ / SQ8) behind one small verb set.

``DenseIndex(dim, DenseConfig(kind=...))`` with ``add(ids, vectors)``, ``search(queries, k, allowed_ids)``,
``remove(ids)``, ``len()``, ``save(dir, seq)`` and ``DenseIndex.load(dir)``. Scores are cosines by default
(``metric="cosine"``: vectors are L2-normalised on add and on search), inner products with ``metric="ip"``.
Missing hits are id -1 with score -inf.

The FAISS index is created on the first ``add`` (IVF trains on that batch) and rebuilt when ``auto`` moves
to another kind as the collection grows, when an IVF outgrows its training set ``retrain_growth`` times, or
when HNSW tombstones exceed ``compact_ratio``; id-native kinds (flat, IVF) instead renumber their ids in place
past ``compact_ratio`` so the slot map stays the size of the live corpus. Not thread-safe: callers serialise
writes.
"""

from __future__ import annotations

import os
from typing import Any

import faiss as _faiss
import numpy as np
import numpy.typing as npt

from index.config import DenseConfig, config_from_meta, config_to_meta
from index.device import GpuReplica
from index.errors import IndexCorruptError
from index.faiss_build import Built, build_index, resolve_kind
from index.persist import load_snapshot, save_snapshot
from index.slots import RemapIds, SlotMap, empty_result, finalize, topk_rows
from index.types import SearchResult
from index.validate import as_allowed_ids, as_ids, as_matrix, check_k

faiss: Any = _faiss  # faiss's bundled stubs lag its SWIG API (SearchParameters*, DirectMap, ...)

__all__ = ["DenseIndex"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


class DenseIndex(RemapIds):
    """Dense vectors ``float32 (n, dim)`` under external int64 ids, searched by inner product."""

    family = "dense"

    def __init__(self, dim: int, config: DenseConfig | None = None) -> None:
        self.dim = int(dim)  # vector dimension
        self.config = config or DenseConfig()  # frozen build/search settings
        self.seq: int | None = None  # sequence number of the last write in the loaded snapshot
        self._slots = SlotMap()  # external id <-> slot
        self._built: Built | None = None  # the FAISS index, None until the first add
        self._gpu = GpuReplica(self.config.device)  # optional GPU copy for unfiltered search

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def kind(self) -> str | None:
        """The concrete kind in use ("flat", "hnsw", "ivf_flat", ...), None before the first add."""
        return None if self._built is None else self._built.kind

    @property
    def faiss_index(self) -> faiss.Index | None:
        """The underlying CPU FAISS index (read-only use: tuning ``nprobe``/``efSearch``, inspection)."""
        return None if self._built is None else self._built.index

    def _prepare(self, x: F32) -> F32:
        if self.config.metric == "cosine":
            x = x.copy()
            faiss.normalize_L2(x)
        return x

    def add(self, ids: Any, items: Any) -> None:
        """Insert or replace (upsert) ``items`` float32 (n, dim) under ``ids`` int64 (n,)."""
        x = self._prepare(as_matrix(items, self.dim))
        keys = as_ids(ids, x.shape[0])
        if keys.size == 0:
            return
        if self._built is None:
            self._built = build_index(self.config, self.dim, x)
        new, replaced = self._slots.assign(keys)
        self._drop(replaced)
        if self._built.positional:
            self._built.index.add(x)
        else:
            self._built.index.add_with_ids(x, new)
        self._gpu.invalidate()
        self._maybe_rebuild()

    def remove(self, ids: Any) -> None:
        """Remove ``ids`` (unknown ids are ignored); removed ids are never returned again."""
        slots = self._slots.release(as_ids(ids))
        if slots.size:
            self._drop(slots)
            self._gpu.invalidate()
            self._maybe_rebuild()

    def _drop(self, slots: I64) -> None:
        if slots.size and self._built is not None and not self._built.positional:
            self._built.index.remove_ids(faiss.IDSelectorArray(slots))

    def _maybe_rebuild(self) -> None:
        built, n = self._built, len(self._slots)
        if built is None:
            return
        dead = self._slots.n_dead / max(1, self._slots.n_slots)
        stale_kind = self.config.kind == "auto" and resolve_kind(self.config, n) != built.kind
        outgrown = built.trained_on > 0 and n > self.config.retrain_growth * built.trained_on
        if stale_kind or outgrown or (built.positional and dead > self.config.compact_ratio):
            self.rebuild()
        elif dead > self.config.compact_ratio:
            self._renumber(built.index)

    def _renumber(self, index: faiss.Index) -> None:
        """Id-native index (flat behind an id map, every IVF kind): drop dead slots from the slot map by
        renumbering FAISS's ids in place (no vector moves, no retraining, no re-quantizing). Without it the slot
        map grows by a slot per upsert forever."""
        slots, keep = self._slots.compacted()
        old_to_new = np.full(self._slots.n_slots, -1, np.int64)
        old_to_new[keep] = np.arange(keep.size, dtype=np.int64)
        if isinstance(index, faiss.IndexIDMap):
            faiss.copy_array_to_vector(old_to_new[faiss.vector_to_array(index.id_map)], index.id_map)
            if isinstance(index, faiss.IndexIDMap2):
                index.construct_rev_map()
        else:
            _renumber_lists(faiss.extract_index_ivf(index), old_to_new)
        self._slots = slots
        self._gpu.invalidate()

    def rebuild(self) -> None:
        """Rebuild (and retrain) the FAISS index over the live vectors, dropping every tombstone.

        Vectors are read back from the index itself: lossless for flat/HNSW/IVF-Flat, re-quantized for
        PQ/SQ8 (the service rebuilds those from its database instead when precision matters).
        """
        slots, keep = self._slots.compacted()
        if self._built is None or keep.size == 0:
            self._slots, self._built = slots, None
            return
        x = np.asarray(self._built.index.reconstruct_batch(keep), dtype=np.float32)
        built = build_index(self.config, self.dim, x)
        if built.positional:
            built.index.add(x)
        else:
            built.index.add_with_ids(x, np.arange(keep.size, dtype=np.int64))
        self._slots, self._built = slots, built
        self._gpu.invalidate()

    compact = rebuild

    def converted(self, config: DenseConfig) -> DenseIndex:
        """A new index built under `config` (another kind: flat -> IVF after a bulk load) over this one's live
        vectors and ids, read back from this index (lossless for flat / HNSW / IVF-Flat); this one is unchanged.
        Memory: a flat index holding just its live vectors is read in place (no writer may add to it meanwhile);
        any other, one float32 copy of the live vectors besides the new index."""
        out = DenseIndex(self.dim, config)
        slots, keep = self._slots.compacted()
        if self._built is None or keep.size == 0:
            return out
        x = self._stored(keep)
        if x is None:
            x = np.asarray(self._built.index.reconstruct_batch(keep), dtype=np.float32)
        built = build_index(config, self.dim, x)
        if built.positional:
            built.index.add(x)
        else:
            built.index.add_with_ids(x, np.arange(keep.size, dtype=np.int64))
        out._slots, out._built = slots, built
        return out

    def _stored(self, keep: I64) -> F32 | None:
        """The flat index's own storage as float32 (n, dim), no copy, when its rows are exactly the slots `keep`
        in order (a bulk-loaded collection); None otherwise. Valid while nothing is added to this index."""
        index = None if self._built is None else self._built.index
        if not isinstance(index, faiss.IndexIDMap2):
            return None
        flat = faiss.downcast_index(index.index)
        if not isinstance(flat, faiss.IndexFlat) or flat.ntotal != keep.size:
            return None
        if not np.array_equal(faiss.vector_to_array(index.id_map), keep):
            return None
        return faiss.rev_swig_ptr(flat.get_xb(), keep.size * self.dim).reshape(keep.size, self.dim)

    def search(self, queries: Any, k: int, allowed_ids: Any = None) -> SearchResult:
        """Best ``k`` live ids per query, optionally only among ``allowed_ids``.

        Args:
            queries: float32 (n_queries, dim).
            k: hits per query (>= 1).
            allowed_ids: None, or int64 (m,) ids a hit may have (unknown ids are ignored).

        Returns:
            ``SearchResult(scores float32 (n_queries, k), ids int64 (n_queries, k))``, best first; id -1 and
            score -inf where fewer than ``k`` (allowed) live vectors exist. Whenever ``k`` exist, ``k`` are
            returned: approximate searches that come back short are completed exhaustively.
        """
        q = self._prepare(as_matrix(queries, self.dim, "queries"))
        k, allowed = check_k(k), as_allowed_ids(allowed_ids)
        built = self._built
        if built is None or len(self._slots) == 0:
            return empty_result(q.shape[0], k)
        if allowed is None and not (built.positional and self._slots.n_dead):
            searcher = self._gpu.searcher(built.index)
            scores, labels = searcher.search(q, k, params=_params(built.index, k, None))
            return self._complete(built, q, k, (scores, labels), None, None)
        cand = self._slots.live_slots() if allowed is None else self._slots.slots_of(allowed)
        if cand.size == 0:
            return empty_result(q.shape[0], k)
        bits = _bitmap(cand, self._slots.n_slots) if built.positional else None
        if bits is not None:
            sel = faiss.IDSelectorBitmap(bits.size * 8, faiss.swig_ptr(bits))
        else:
            sel = faiss.IDSelectorBatch(cand)
        found = built.index.search(q, k, params=_params(built.index, k, sel))
        return self._complete(built, q, k, found, sel, cand)

    def _complete(
        self, built: Built, q: F32, k: int, found: tuple[F32, I64], sel: Any, cand: I64 | None
    ) -> SearchResult:
        """Redo exhaustively the rows an approximate search left with fewer than ``k`` existing hits."""
        scores, labels = found
        available = len(self._slots) if cand is None else cand.size
        short = (labels >= 0).sum(axis=1) < min(k, available)
        if short.any():
            if cand is None:
                cand = self._slots.live_slots()
            scores[short], labels[short] = _exhaustive(built, q[short], k, sel, cand)
        return finalize(scores, labels, self._slots)

    def save(self, directory: str | os.PathLike[str], seq: int | None = None) -> None:
        """Atomically write this index to ``directory`` recording ``seq``, the last write it includes."""
        built = self._built
        meta: dict[str, Any] = {"dim": self.dim, "config": config_to_meta(self.config), "count": len(self)}
        blobs = {}
        if built is not None:
            meta |= {"kind": built.kind, "positional": built.positional, "trained_on": built.trained_on}
            blobs["faiss"] = faiss.serialize_index(built.index)
        save_snapshot(directory, self.family, seq, meta, {"slot_ids": self._slots.slot_ids}, blobs)
        self.seq = seq

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> DenseIndex:
        """Read an index saved by :meth:`save`; raises ``IndexCorruptError`` naming a damaged file."""
        snap = load_snapshot(directory, cls.family)
        obj = cls(int(snap.require("dim")), config_from_meta(DenseConfig, snap.require("config")))
        obj._slots = SlotMap(snap.array("slot_ids"))
        obj.seq = snap.seq
        if "faiss" in snap.blobs:
            try:
                index = faiss.deserialize_index(snap.blobs["faiss"])
            except RuntimeError as e:
                raise IndexCorruptError(snap.paths["faiss"], f"unreadable FAISS index ({e})") from e
            positional, trained_on = bool(snap.require("positional")), int(snap.require("trained_on"))
            obj._built = Built(index, str(snap.require("kind")), positional, trained_on)
        return obj


def _bitmap(slots: I64, n: int) -> npt.NDArray[np.uint8]:
    mask = np.zeros(n, dtype=bool)
    mask[slots] = True
    return np.packbits(mask, bitorder="little")


def _params(index: faiss.Index, k: int, sel: Any, exhaustive: bool = False) -> Any:
    """Search parameters carrying the selector and the family's breadth knob (None when default)."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        if sel is None and not exhaustive:
            return None
        return faiss.SearchParametersIVF(sel=sel, nprobe=ivf.nlist if exhaustive else ivf.nprobe)
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexPreTransform) else index
    if isinstance(inner, faiss.IndexHNSW):
        ef = max(inner.hnsw.efSearch, 2 * k)
        return faiss.SearchParametersHNSW(sel=sel, efSearch=ef) if sel is not None or ef > inner.hnsw.efSearch else None
    return None if sel is None else faiss.SearchParameters(sel=sel)


def _exhaustive(built: Built, q: F32, k: int, sel: Any, cand: I64) -> tuple[F32, I64]:
    """Exact best ``k`` among ``cand`` for queries an approximate filtered search left short."""
    index = built.index
    if faiss.try_extract_index_ivf(index) is not None:
        return index.search(q, k, params=_params(index, k, sel, exhaustive=True))
    if isinstance(index, faiss.IndexHNSW):
        return index.storage.search(q, k, params=faiss.SearchParameters(sel=sel))
    scores, cols = topk_rows(q @ np.asarray(index.reconstruct_batch(cand), np.float32).T, k)
    return scores, np.where(cols >= 0, cand[np.maximum(cols, 0)], -1)


def _renumber_lists(ivf: faiss.IndexIVF, old_to_new: I64) -> None:
    """Rewrite the ids stored in every inverted list of ``ivf`` through ``old_to_new`` (codes kept as they are),
    then rebuild its id -> entry hashtable."""
    lists = ivf.invlists
    for list_no in range(ivf.nlist):
        n = lists.list_size(list_no)
        if n:
            ids = old_to_new[faiss.rev_swig_ptr(lists.get_ids(list_no), n)]
            codes = faiss.rev_swig_ptr(lists.get_codes(list_no), n * lists.code_size).copy()
            lists.update_entries(list_no, 0, n, faiss.swig_ptr(ids), faiss.swig_ptr(codes))
    ivf.set_direct_map_type(faiss.DirectMap.NoMap)
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
