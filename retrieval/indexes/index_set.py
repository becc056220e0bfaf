"""A collection's derived indexes: built from the store, kept in step with writes, snapshotted by sequence.

The store is the source of truth. Each index family lives under `<snapshots>/<collection>/<family>/` with the
sequence number it contains (`index/persist.py` writes it atomically and checksummed). At start a collection
loads every snapshot and replays what the store holds after the oldest one (removals first, then additions;
chunk ids are never reused, so the order is safe), or rebuilds from the store when a snapshot is missing,
corrupt, of another format version, or built with other settings. Files a killed save left behind (temporary
files, data files no manifest names) are deleted first, so they never pile up across crashes.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from encoder import Engine
from index import (
    BM25Index,
    DenseConfig,
    DenseIndex,
    Index,
    IndexStoreError,
    MultiVectorIndex,
    SearchResult,
    SparseIndex,
)
from index.faiss_build import resolve_kind
from index.persist import remove_leftovers
from index.storage import expected_bytes_per_doc
from retrieval.spec.collection import CollectionSpec, Family
from retrieval.store import ChunkRow, Store, VectorKind

__all__ = ["Family", "IndexSet", "load_index"]

log = logging.getLogger(__name__)

AnyIndex = Index  # any family: the shared verbs of `index.Index`


def live_dense_config(config: DenseConfig, n: int) -> DenseConfig:
    """`auto` becomes the concrete kind for `n` vectors, so the live index never retrains inside a write; a
    background build swaps in the next kind when the collection outgrows this one (`IndexSet.upgrade`)."""
    return config if config.kind != "auto" else msgspec.structs.replace(config, kind=resolve_kind(config, n))


def _new(family: Family, spec: CollectionSpec, dims: dict[str, int], home: Path | None = None) -> AnyIndex:
    if family == "dense":
        return DenseIndex(dims["dense"], live_dense_config(spec.index.dense, 0))
    if family == "multivector":  # a compressed index keeps its token file in its snapshot folder
        return MultiVectorIndex(dims["multivector"], spec.index.multivector, None if home is None else home / family)
    if family == "sparse":
        return SparseIndex()
    return BM25Index(spec.index.bm25)


def load_index(family: Family, folder: Path) -> AnyIndex:
    """The `family` index saved in `folder` (checksums verified): IndexStoreError, OSError or ValueError when
    it is missing, damaged or of another format."""
    cls: Any = {"dense": DenseIndex, "multivector": MultiVectorIndex, "sparse": SparseIndex, "bm25": BM25Index}
    return cls[family].load(folder)


def _items(family: Family, rows: Sequence[ChunkRow]) -> tuple[npt.NDArray[np.int64], Any]:
    """(ids, items) of `rows` for one family: rows without that representation are left out."""
    if family == "bm25":
        return np.array([r.chunk_id for r in rows], np.int64), [r.text for r in rows]
    keep = [r for r in rows if getattr(r, family) is not None]  # a vector family names its ChunkRow field
    ids = np.array([r.chunk_id for r in keep], np.int64)
    values = [getattr(r, family) for r in keep]
    if family == "dense":
        return ids, np.stack(values).astype(np.float32) if values else np.zeros((0, 1), np.float32)
    return ids, values


class ReadWriteLock:
    """Many readers (searches, snapshot saves) or one writer (writes, replays, swaps); a waiting writer holds
    off new readers. The writer may re-enter (a replay applies batches)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0  # readers inside
        self._writer: int | None = None  # thread id of the writer inside
        self._depth = 0  # its re-entry depth
        self._waiting = 0  # writers waiting

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer != me:  # a writer may read what it holds
                self._cond.wait_for(lambda: self._writer is None and self._waiting == 0)
                self._readers += 1
        try:
            yield
        finally:
            if self._writer != me:
                with self._cond:
                    self._readers -= 1
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer != me:
                self._waiting += 1
                self._cond.wait_for(lambda: self._writer is None and self._readers == 0)
                self._waiting -= 1
                self._writer = me
            self._depth += 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._writer = None
                self._cond.notify_all()


class IndexSet:
    """The indexes of one collection, guarded by one lock (FAISS and bm25s are not safe under concurrent
    writes); `seq` is the last store write they contain."""

    def __init__(
        self, spec: CollectionSpec, dims: dict[str, int], families: Sequence[Family], home: Path | None = None
    ) -> None:
        self.spec = spec  # the collection's settings
        self.home = home  # the snapshot folder (`<snapshots>/<collection>`): where index files live; None = temp
        self.dims = dims  # vector width per representation
        self.families: tuple[Family, ...] = tuple(families)  # which indexes exist
        self.lock = ReadWriteLock()  # searches and saves read; writes, replays and swaps write
        self._saving = threading.Lock()  # one snapshot save at a time
        self.indexes: dict[Family, AnyIndex] = {f: _new(f, spec, dims, home) for f in self.families}
        self.seq = 0  # last store write applied
        self.saved_seq = -1  # last seq written to snapshots (-1 = never)
        self.dropped = False  # the collection was deleted: never snapshot again
        self.bulk_loading = False  # a bulk load is running: no background upgrade or snapshot until it ends

    # -- keeping in step ------------------------------------------------------------------------------
    def apply(self, rows: Sequence[ChunkRow], removed: npt.NDArray[np.int64], seq: int) -> None:
        """Apply one write (or a replay batch): remove `removed` chunk ids, then add `rows`."""
        with self.lock.write():
            for family, index in self.indexes.items():
                if removed.size:
                    index.remove(removed)
                ids, items = _items(family, rows)
                if ids.size:
                    index.add(ids, items)
            self.seq = max(self.seq, seq)

    def replay(self, store: Store, collection: str, after_seq: int) -> int:
        """Bring every index up to the store's last write; returns how many chunks were added."""
        top = store.last_seq()
        removed = store.removed_after(collection, after_seq, upto_seq=top)
        added = 0
        with self.lock.write():
            if removed.size:
                self.apply([], removed, after_seq)
            for rows in store.iter_chunks(collection, after_seq=after_seq, upto_seq=top, vectors=self._vectors()):
                self.apply(rows, np.zeros(0, np.int64), after_seq)
                added += len(rows)
            self.seq = top
        return added

    def _vectors(self) -> list[VectorKind]:
        return [f for f in self.families if f != "bm25"]

    # -- searching ------------------------------------------------------------------------------------
    def search(self, family: Family, queries: Any, k: int, allowed: npt.NDArray[np.int64] | None) -> SearchResult:
        """One family's best `k` chunk ids per query (`allowed`: only these ids)."""
        with self.lock.read():
            return self.indexes[family].search(queries, k, allowed_ids=allowed)

    def sizes(self) -> dict[str, int]:
        with self.lock.read():
            return {f: len(i) for f, i in self.indexes.items()}

    def multivector_storage(self, engine: Engine | None) -> dict[str, float]:
        """Multi-vector index bytes per document: ``expected`` for a chunk of the model's full length (or
        ``chunking.max_tokens``) under the collection's settings, and ``actual`` (0 until documents exist)."""
        index = self.indexes.get("multivector")
        if engine is None or not isinstance(index, MultiVectorIndex):
            return {}
        config = self.spec.index.multivector
        tokens = self.spec.chunking.max_tokens or engine.max_model_len
        two_stage = config.kind != "exact"
        expected = expected_bytes_per_doc(config, self.dims["multivector"], tokens, two_stage)
        with self.lock.read():
            actual = index.bytes_per_doc()
        return {"expected_bytes_per_doc": float(expected), "actual_bytes_per_doc": actual, "tokens_per_doc": tokens}

    # -- growing -------------------------------------------------------------------------------------
    def upgrade(self, store: Store, collection: str) -> bool:
        """Background upkeep: retrain the compressed multi-vector codes when due (`retrain`), and build the dense
        index of the kind the collection's size now calls for (flat -> IVF ...) from the store, outside the lock,
        then catch up on writes made meanwhile and swap it in. Reads and writes continue on the old index
        throughout; returns whether a swap happened."""
        retrained = self.retrain(collection)
        return self._upgrade_dense(store, collection) or retrained

    def retrain(self, collection: str) -> bool:
        """New codes for a compressed multi-vector index whose data drifted or grew: planned under the read side
        (no write runs), built with no lock held (searches and writes go on, reading and appending the token
        file), swapped in under the write side after the rows written meanwhile are encoded."""
        index = self.indexes.get("multivector")
        if self.bulk_loading or not isinstance(index, MultiVectorIndex):
            return False
        with self.lock.read():
            plan = index.retrain_plan()
        if plan is None:
            return False
        try:
            done = plan.run()
        except (IndexStoreError, RuntimeError, ValueError, OSError) as exc:  # the old codes keep serving
            log.warning("collection %s: multi-vector retrain (%s) failed: %s", collection, plan.reason, exc)
            return False
        with self.lock.write():
            swapped = self.indexes.get("multivector") is index and index.retrain_apply(done)
            if swapped:
                self.saved_seq = -1  # the next snapshot writes the new codes
        log.info("collection %s: multi-vector codes retrained (%s): %s", collection, plan.reason, swapped)
        return swapped

    def _upgrade_dense(self, store: Store, collection: str) -> bool:
        live = self.indexes.get("dense")
        if self.bulk_loading or not isinstance(live, DenseIndex) or self.spec.index.dense.kind != "auto":
            return False  # a bulk load converts the index itself, once, at its end (`finish_bulk`)
        config = live_dense_config(self.spec.index.dense, len(live))
        if config.kind == live.config.kind:
            return False
        top = store.last_seq()
        fresh = DenseIndex(self.dims["dense"], config)
        rows = [r for batch in store.iter_chunks(collection, upto_seq=top, vectors=["dense"]) for r in batch]
        ids, items = _items("dense", rows)
        if ids.size:
            fresh.add(ids, items)
        with self.lock.write():
            removed = store.removed_after(collection, top)
            newer = [r for batch in store.iter_chunks(collection, after_seq=top, vectors=["dense"]) for r in batch]
            if removed.size:
                fresh.remove(removed)
            ids, items = _items("dense", newer)
            if ids.size:
                fresh.add(ids, items)
            self.indexes["dense"] = fresh
            self.saved_seq = -1  # the next snapshot writes the new kind
        log.info("collection %s: dense index is now %s (%d vectors)", collection, config.kind, len(fresh))
        return True

    @contextlib.contextmanager
    def bulk(self, collection: str) -> Iterator[None]:
        """A bulk load runs inside this (the caller holds off other writers). Meanwhile the background
        snapshot neither upgrades the dense index (reading every stored chunk back) nor saves snapshots
        (which hold the read side while writing, stalling the load's next batch): the store holds every
        committed batch, and a restart replays what no snapshot has. At the end, `finish_bulk`."""
        self.bulk_loading = True
        try:
            yield
        finally:
            self.bulk_loading = False
        self.finish_bulk(collection)

    def finish_bulk(self, collection: str) -> None:
        """After a bulk load (no other writers): move the dense index to the kind its size calls for, built
        once from the vectors it holds (searches go on meanwhile; flat -> IVF), while BM25's index is built now
        in this thread, so the first search after the load pays for neither. FAISS works outside the
        interpreter lock, so the two builds overlap."""
        with ThreadPoolExecutor(1, thread_name_prefix="bulk-dense") as pool:
            dense = pool.submit(self._converted_dense)
            bm25 = self.indexes.get("bm25")
            if isinstance(bm25, BM25Index):
                with self.lock.write():
                    bm25.build()
            fresh = dense.result()
        if fresh is not None:
            with self.lock.write():
                self.indexes["dense"] = fresh
                self.saved_seq = -1  # the next snapshot writes the new kind
            log.info("collection %s: dense index built as %s after a bulk load", collection, fresh.config.kind)

    def _converted_dense(self) -> DenseIndex | None:
        """The live dense index rebuilt as the kind its size calls for; None when it already is that kind.
        Reads the live index without the lock: no writer runs (bulk), and FAISS reads beside searches."""
        live = self.indexes.get("dense")
        if not isinstance(live, DenseIndex) or self.spec.index.dense.kind != "auto":
            return None
        config = live_dense_config(self.spec.index.dense, len(live))
        return None if config.kind == live.config.kind else live.converted(config)

    # -- snapshots ------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write every index atomically with the seq it contains (skipped when nothing changed). Holds the read
        side: searches go on meanwhile; writes wait until the files are written."""
        with self._saving, self.lock.read():
            if self.dropped or self.bulk_loading or self.saved_seq == self.seq:
                return
            for family, index in self.indexes.items():
                index.save(folder / family, seq=self.seq)
            self.saved_seq = self.seq

    def save_copy(self, folder: Path) -> list[Family]:
        """Write every index into `folder/<family>/` with the seq it contains (an export's copy: the collection's
        own snapshots and `saved_seq` are left alone); returns the families written. Holds the read side."""
        with self.lock.read():
            for family, index in self.indexes.items():
                index.save(folder / family, seq=self.seq)
            return list(self.indexes)

    def fits(self, family: Family, index: AnyIndex) -> bool:
        """Whether `index` was built with this collection's settings for `family` (dimension, index config)."""
        return family in self.indexes and _same_settings(self, {family: index})

    def drop(self, folder: Path) -> None:
        """The collection is deleted: wait for a snapshot in progress, forbid later ones, remove `folder`
        (a background save holding a stale reference could otherwise write it again after the removal)."""
        with self._saving, self.lock.write():
            self.dropped = True
            shutil.rmtree(folder, ignore_errors=True)

    @classmethod
    def adopt(
        cls,
        spec: CollectionSpec,
        dims: dict[str, int],
        families: Sequence[Family],
        store: Store,
        ready: dict[Family, AnyIndex],
        home: Path | None = None,
    ) -> IndexSet:
        """The indexes of a collection whose store rows were just written (an import): the `ready` ones as they
        are (they hold exactly those rows, under the store's chunk ids; a multi-vector one moves its files to
        `home`), every other family built from the store. Nothing may write to the collection meanwhile; the
        result is at the store's last seq."""
        built = cls(spec, dims, families, home)
        rest = cls(spec, dims, [f for f in built.families if f not in ready], home)
        ready_mv = ready.get("multivector")
        if home is not None and isinstance(ready_mv, MultiVectorIndex):
            ready_mv.attach(home / "multivector")
        if rest.families:
            rest.replay(store, spec.name, 0)
        built.indexes = {f: ready[f] if f in ready else rest.indexes[f] for f in built.families}
        built.seq = store.last_seq()
        return built

    @classmethod
    def open(
        cls, spec: CollectionSpec, dims: dict[str, int], families: Sequence[Family], store: Store, folder: Path
    ) -> tuple[IndexSet, str]:
        """Load snapshots and replay newer writes, or rebuild from the store; returns (indexes, how)."""
        built = cls(spec, dims, families, folder)
        _clean(built.families, folder)
        loaded = _load_all(built.families, folder)
        if loaded is not None and _same_settings(built, loaded):
            built.indexes = loaded
            # replay from the oldest snapshot: families saved later get some writes again, which is an upsert
            base = min(int(i.seq or 0) for i in loaded.values())
            built.saved_seq = base
            built.replay(store, spec.name, base)
            return built, "snapshot"
        shutil.rmtree(folder, ignore_errors=True)
        built.replay(store, spec.name, 0)
        return built, "rebuild"


def _clean(families: Iterable[Family], folder: Path) -> None:
    for family in families:
        if removed := remove_leftovers(folder / family):
            log.info("snapshot %s: removed %d files of an interrupted save", folder / family, len(removed))


def _load_all(families: Iterable[Family], folder: Path) -> dict[Family, AnyIndex] | None:
    loaded: dict[Family, AnyIndex] = {}
    for family in families:
        try:
            loaded[family] = load_index(family, folder / family)
        except (IndexStoreError, OSError, ValueError) as exc:
            log.warning("snapshot %s is unusable (%s); rebuilding from the store", folder / family, exc)
            return None
    return loaded


def _same_settings(fresh: IndexSet, loaded: dict[Family, AnyIndex]) -> bool:
    """A snapshot built with other settings (dimension, index config) is rebuilt rather than served."""
    for family, index in loaded.items():
        expected = fresh.indexes[family]
        got, want = getattr(index, "config", None), getattr(expected, "config", None)
        if family == "dense" and fresh.spec.index.dense.kind == "auto" and isinstance(got, DenseConfig):
            got = msgspec.structs.replace(got, kind="auto")  # the live kind follows the size
            want = fresh.spec.index.dense
        if got != want:
            return False
        if getattr(index, "dim", None) != getattr(expected, "dim", None):
            return False
    return True
