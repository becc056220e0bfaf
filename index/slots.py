"""External id <-> internal slot mapping with tombstones, shared by every index family.

Each stored item lives in a *slot* (a dense int64 position, never reused until compaction). The map keeps
``slot -> external id`` as a numpy array (vectorised result translation, no Python loop over hits) and
``external id -> slot`` as a dict (upserts and removals). A removed or replaced item's slot becomes a
tombstone (external id ``-1``) until the owning index compacts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from index.errors import InvalidIdsError
from index.types import MISSING_ID, MISSING_SCORE, SearchResult
from index.validate import as_ids

__all__ = ["RemapIds", "SlotMap", "empty_result", "finalize", "topk_rows"]

I64 = npt.NDArray[np.int64]


class SlotMap:
    """Bidirectional map between external ids (int64 >= 0) and slots ``0..n_slots-1``."""

    def __init__(self, slot_ids: I64 | None = None) -> None:
        ext = np.empty(0, np.int64) if slot_ids is None else np.asarray(slot_ids, np.int64)
        self._ext = ext.copy()  # int64 (capacity,): slot -> external id, -1 for tombstones
        self._n = int(ext.shape[0])  # slots in use (live + tombstones)
        live = np.flatnonzero(ext >= 0)
        self._lookup: dict[int, int] = dict(zip(ext[live].tolist(), live.tolist(), strict=True))

    def __len__(self) -> int:
        return len(self._lookup)

    @property
    def n_slots(self) -> int:
        """Slots in use, live and dead."""
        return self._n

    @property
    def n_dead(self) -> int:
        """Tombstoned slots awaiting compaction."""
        return self._n - len(self._lookup)

    @property
    def slot_ids(self) -> I64:
        """int64 (n_slots,) view: the external id of each slot, -1 where dead."""
        return self._ext[: self._n]

    def assign(self, ids: I64) -> tuple[I64, I64]:
        """Give each id a fresh slot; return ``(new_slots, replaced_slots)`` (the latter are now dead)."""
        replaced = self.release(ids)
        new = np.arange(self._n, self._n + ids.shape[0], dtype=np.int64)
        if self._n + ids.shape[0] > self._ext.shape[0]:
            grown = np.full(max(2 * self._ext.shape[0], self._n + ids.shape[0], 16), -1, np.int64)
            grown[: self._n] = self._ext[: self._n]
            self._ext = grown
        self._ext[new] = ids
        self._lookup.update(zip(ids.tolist(), new.tolist(), strict=True))
        self._n += ids.shape[0]
        return new, replaced

    def release(self, ids: I64) -> I64:
        """Tombstone the slots of ``ids`` (unknown ids are ignored); return those slots."""
        slots = [s for s in (self._lookup.pop(i, None) for i in ids.tolist()) if s is not None]
        out = np.asarray(slots, dtype=np.int64)
        self._ext[out] = -1
        return out

    def slots_of(self, ids: I64) -> I64:
        """Slots of the live ids among ``ids`` (unknown or removed ids are dropped)."""
        get = self._lookup.get
        return np.asarray([s for s in map(get, ids.tolist()) if s is not None], dtype=np.int64)

    def live_slots(self) -> I64:
        """Sorted int64 array of live slots."""
        return np.flatnonzero(self._ext[: self._n] >= 0).astype(np.int64)

    def live_mask(self) -> npt.NDArray[np.bool_]:
        """bool (n_slots,): True where the slot is live."""
        return self._ext[: self._n] >= 0

    def to_ext(self, labels: I64) -> I64:
        """Translate slots (any shape, -1 for none) to external ids (-1 stays -1), vectorised."""
        out = self._ext[np.where(labels >= 0, labels, 0)]
        return np.where(labels >= 0, out, MISSING_ID)

    def compacted(self) -> tuple[SlotMap, I64]:
        """A new map over live slots only, renumbered ``0..n_live-1``, and the old slots in new order."""
        keep = self.live_slots()
        return SlotMap(self._ext[keep]), keep

    def remapped(self, old: I64, new: I64) -> SlotMap:
        """A map with the same slots (tombstones kept) whose live external ids are renamed ``old[i] -> new[i]``
        (``old``, ``new``: int64 (m,), each unique). Every live id must be among ``old``; ids of ``old`` not in
        the map are ignored. The index data keyed by slot stays valid as it is.

        >>> SlotMap(np.array([7, -1, 9])).remapped(np.array([9, 7, 5]), np.array([90, 70, 50])).slot_ids.tolist()
        [70, -1, 90]
        """
        old, new = as_ids(old), as_ids(new, len(old))
        live = self.live_slots()
        ext = self._ext[live]
        order = np.argsort(old)
        pos = order[np.searchsorted(old, ext, sorter=order).clip(0, old.size - 1)] if old.size else live[:0]
        unknown = int((old[pos] != ext).sum()) if old.size else ext.size
        if unknown:
            raise InvalidIdsError("old", "every live id of the index", f"{unknown} live ids not among them")
        out = self._ext[: self._n].copy()
        out[live] = new[pos]
        return SlotMap(out)


class RemapIds:
    """Mixin of every index family (each keeps its ids in the slot map ``self._slots``): rename the ids."""

    _slots: SlotMap

    def remap_ids(self, old: Any, new: Any) -> None:
        """Rename every live id ``old[i]`` to ``new[i]`` (int64 (m,) each, unique), nothing else changes (vectors,
        FAISS structures, trained centroids): an index moved to a store that numbers its items anew.
        InvalidIdsError (and no change) when a live id is not among ``old``."""
        self._slots = self._slots.remapped(np.asarray(old), np.asarray(new))


def finalize(scores: npt.NDArray[np.floating], labels: I64, slots: SlotMap) -> SearchResult:
    """Turn raw ``(scores, slot labels)`` into a :class:`SearchResult` with external ids and -inf gaps."""
    ids = slots.to_ext(labels.astype(np.int64, copy=False))
    out = np.where(ids >= 0, scores, MISSING_SCORE).astype(np.float32, copy=False)
    return SearchResult(out, ids)


def empty_result(n_queries: int, k: int) -> SearchResult:
    """A result with no hits at all: ``-inf`` scores and ``-1`` ids."""
    return SearchResult(
        np.full((n_queries, k), MISSING_SCORE, np.float32), np.full((n_queries, k), MISSING_ID, np.int64)
    )


def topk_rows(scores: npt.NDArray[np.floating], k: int) -> tuple[npt.NDArray[np.float32], I64]:
    """Best ``k`` per row of a dense score matrix ``(n, m)``: ``(scores (n, k), column labels (n, k))``.

    Columns scoring ``-inf`` are never returned (label -1). Ties keep the lower column first.
    """
    n, m = scores.shape
    kk = min(k, m)
    if kk == 0:
        return np.full((n, k), MISSING_SCORE, np.float32), np.full((n, k), -1, np.int64)
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < m else np.tile(np.arange(m), (n, 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    labels = np.take_along_axis(part, order, axis=1).astype(np.int64)
    top = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    labels[~np.isfinite(top) & (top < 0)] = -1
    pad = k - kk
    if pad:
        top = np.pad(top, ((0, 0), (0, pad)), constant_values=MISSING_SCORE)
        labels = np.pad(labels, ((0, 0), (0, pad)), constant_values=-1)
    return top, labels
