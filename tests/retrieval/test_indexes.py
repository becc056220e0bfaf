"""A collection's IndexSet (retrieval/indexes/): apply/replay from the store, snapshots, and when it rebuilds.

Client vectors only (no model): documents with seeded dense, multi-vector and sparse vectors go into a Store in
tmp_path; brute-force cosine over what the store holds is the reference for dense search.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from index import DenseConfig, MultiVectorConfig
from retrieval.indexes import Family, IndexSet
from retrieval.spec.collection import CollectionSpec, IndexSpec
from retrieval.store import Store
from retrieval.store.records import DocumentRecord
from tests.retrieval.store._docs import DIM, make_doc, n_chunks

FAMILIES: tuple[Family, ...] = ("dense", "multivector", "sparse", "bm25")
DIMS = {"dense": DIM, "multivector": DIM}
SPEC = CollectionSpec(name="c", dense_model="d", multivector_model="m", sparse_model="s")


def _store(tmp_path: Path, numbers: range) -> Store:
    store = Store.open(tmp_path / "db.sqlite")
    store.create_collection("c", {}, dims=DIMS)
    store.write("c", [make_doc(i) for i in numbers])
    return store


def _dense_rows(store: Store) -> tuple[np.ndarray, np.ndarray]:
    rows = [r for batch in store.iter_chunks("c", vectors=["dense"]) for r in batch]
    return np.array([r.chunk_id for r in rows], np.int64), np.stack([r.dense for r in rows])


def _chunks(numbers: range) -> int:
    return sum(n_chunks(i, 0) for i in numbers)


def test_replay_builds_every_family_and_dense_search_matches_brute_force(tmp_path: Path) -> None:
    store = _store(tmp_path, range(8))
    indexes = IndexSet(SPEC, DIMS, FAMILIES)
    assert indexes.replay(store, "c", 0) == _chunks(range(8)) and indexes.seq == store.last_seq()
    assert indexes.sizes() == dict.fromkeys(FAMILIES, _chunks(range(8)))
    ids, vectors = _dense_rows(store)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    query = np.random.default_rng(0).standard_normal((1, DIM)).astype(np.float32)
    cosine = unit @ (query[0] / np.linalg.norm(query))
    want = ids[np.argsort(-cosine, kind="stable")[:5]]
    got = indexes.search("dense", query, 5, None)
    assert got.ids[0].tolist() == want.tolist()
    assert got.scores[0] == pytest.approx(np.sort(cosine)[::-1][:5], abs=1e-5)
    allowed = ids[::3]
    filtered = indexes.search("dense", query, 50, allowed)
    assert set(filtered.ids[0][filtered.ids[0] >= 0].tolist()) == set(allowed.tolist())


def test_replay_after_a_seq_applies_removals_then_additions(tmp_path: Path) -> None:
    store = _store(tmp_path, range(4))
    indexes = IndexSet(SPEC, DIMS, FAMILIES)
    indexes.replay(store, "c", 0)
    seen = indexes.seq
    assert (indexes.search("bm25", ["00000"], 10, None).ids[0] >= 0).sum() == n_chunks(0, 0)  # d0's chunks
    gone = store.write("c", [make_doc(1, version=1)], deletes=["d0"])  # replace d1, delete d0
    assert indexes.replay(store, "c", seen) == n_chunks(1, 1)
    live = _chunks(range(2, 4)) + n_chunks(1, 1)
    assert indexes.sizes() == dict.fromkeys(FAMILIES, live)
    hits = indexes.search("bm25", ["00000"], 10, None).ids[0]  # d0's text: every chunk starts with it
    assert not set(hits.tolist()) & set(gone.removed.tolist()) and (hits[hits >= 0].size == 0)


def test_apply_removes_then_adds(tmp_path: Path) -> None:
    store = _store(tmp_path, range(3))
    rows = [r for batch in store.iter_chunks("c", vectors=["dense", "sparse"]) for r in batch]
    indexes = IndexSet(SPEC, DIMS, ("dense", "sparse"))
    indexes.apply(rows, np.zeros(0, np.int64), seq=5)
    assert indexes.sizes() == {"dense": len(rows), "sparse": len(rows)} and indexes.seq == 5
    indexes.apply([], np.array([rows[0].chunk_id], np.int64), seq=3)
    assert indexes.sizes() == {"dense": len(rows) - 1, "sparse": len(rows) - 1} and indexes.seq == 5


def test_open_loads_a_snapshot_and_replays_newer_writes(tmp_path: Path) -> None:
    store = _store(tmp_path, range(5))
    folder = tmp_path / "snap"
    first, how = IndexSet.open(SPEC, DIMS, FAMILIES, store, folder)
    assert how == "rebuild"  # nothing saved yet
    first.save(folder)
    assert first.saved_seq == first.seq and {p.name for p in folder.iterdir()} == set(FAMILIES)
    store.write("c", [make_doc(i) for i in range(5, 7)])
    again, how = IndexSet.open(SPEC, DIMS, FAMILIES, store, folder)
    assert how == "snapshot" and again.seq == store.last_seq() and again.saved_seq == first.seq
    assert again.sizes() == dict.fromkeys(FAMILIES, _chunks(range(7)))
    query = _dense_rows(store)[1][:2]
    fresh = IndexSet(SPEC, DIMS, FAMILIES)
    fresh.replay(store, "c", 0)
    assert again.search("dense", query, 4, None).ids.tolist() == fresh.search("dense", query, 4, None).ids.tolist()


def test_other_settings_or_a_broken_snapshot_rebuild_from_the_store(tmp_path: Path) -> None:
    store = _store(tmp_path, range(4))
    folder = tmp_path / "snap"
    built, _ = IndexSet.open(SPEC, DIMS, FAMILIES, store, folder)
    built.save(folder)
    ip = CollectionSpec(
        name="c",
        dense_model="d",
        multivector_model="m",
        sparse_model="s",
        index=IndexSpec(dense=DenseConfig("flat", metric="ip")),
    )
    assert ip.index.dense != SPEC.index.dense
    other, how = IndexSet.open(ip, DIMS, FAMILIES, store, folder)
    assert how == "rebuild" and other.sizes() == dict.fromkeys(FAMILIES, _chunks(range(4)))
    assert not folder.exists()  # the stale snapshot is dropped
    built.saved_seq = -1
    built.save(folder)
    assert IndexSet.open(SPEC, DIMS, FAMILIES, store, folder)[1] == "snapshot"
    for f in (folder / "sparse").iterdir():
        f.write_bytes(b"garbage")
    broken, how = IndexSet.open(SPEC, DIMS, FAMILIES, store, folder)
    assert how == "rebuild" and broken.sizes() == dict.fromkeys(FAMILIES, _chunks(range(4)))


def test_read_write_lock_lets_readers_overlap_and_keeps_writers_alone() -> None:
    import threading
    import time

    from retrieval.indexes import ReadWriteLock

    lock, inside, peak, log = ReadWriteLock(), [0], [0], []
    guard = threading.Lock()

    def reader() -> None:
        with lock.read():
            with guard:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.05)
            with guard:
                inside[0] -= 1

    def writer() -> None:
        with lock.write(), lock.write():  # re-entrant for the writer
            with guard:
                log.append(inside[0])  # no reader inside while writing
            with lock.read():  # the writer may read what it holds
                time.sleep(0.02)

    threads = [threading.Thread(target=reader) for _ in range(4)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert peak[0] >= 2 and log == [0]


def test_a_bulk_window_holds_off_snapshots_and_upgrades_then_converts_once(tmp_path: Path) -> None:
    spec = CollectionSpec(
        name="c", dense_model="d", index=IndexSpec(dense=DenseConfig(metric="cosine", auto_flat_max=12, nlist=2))
    )
    store = _store(tmp_path, range(12))
    folder = tmp_path / "snap"
    indexes = IndexSet(spec, {"dense": DIM}, ("dense", "bm25"))
    with indexes.bulk("c"):
        indexes.replay(store, "c", 0)  # the committed batches, as a load applies them
        assert indexes.sizes()["dense"] > 12
        assert indexes.upgrade(store, "c") is False  # the background tick reads nothing back meanwhile
        indexes.save(folder)
        assert not folder.exists() and indexes.saved_seq == -1  # nor does it snapshot a half-loaded collection
    assert indexes.indexes["dense"].kind == "ivf_flat"  # type: ignore[union-attr]
    assert indexes.bulk_loading is False
    ids, vectors = _dense_rows(store)
    got = indexes.search("dense", vectors[:3], 1, None)
    assert got.ids[:, 0].tolist() == ids[:3].tolist()  # every vector kept through the conversion
    indexes.save(folder)
    assert indexes.saved_seq == indexes.seq and (folder / "dense").exists()


COMPRESSED = CollectionSpec(
    name="c", multivector_model="m", bm25=False, index=IndexSpec(multivector=MultiVectorConfig(kind="compressed"))
)


def _shifted(number: int) -> DocumentRecord:
    """Document ``number`` with its token vectors scaled x5: another distribution than ``make_doc``'s."""
    doc = make_doc(number)
    chunks = tuple(dataclasses.replace(c, multivector=c.multivector * 5) for c in doc.chunks)
    return dataclasses.replace(doc, chunks=chunks)


def _mv_oracle(store: Store, query: np.ndarray, k: int) -> list[int]:
    rows = [r for batch in store.iter_chunks("c", vectors=["multivector"]) for r in batch]
    scores = [float((query @ r.multivector.T).max(axis=1).sum()) for r in rows]
    return [rows[i].chunk_id for i in np.argsort(-np.asarray(scores), kind="stable")[:k]]


def test_a_compressed_index_keeps_its_token_file_in_the_snapshot_folder(tmp_path: Path) -> None:
    store = _store(tmp_path, range(40))
    folder = tmp_path / "snap"
    first, how = IndexSet.open(COMPRESSED, DIMS, ["multivector"], store, folder)
    assert how == "rebuild"
    first.save(folder)
    [token_file] = (folder / "multivector").glob("tokens.*.f16")
    store.write("c", [make_doc(i) for i in range(40, 50)])
    again, how = IndexSet.open(COMPRESSED, DIMS, ["multivector"], store, folder)
    assert how == "snapshot" and again.sizes() == {"multivector": _chunks(range(50))}
    assert list((folder / "multivector").glob("tokens.*.f16")) == [token_file]  # the replay appended there
    query = np.random.default_rng(3).standard_normal((4, DIM)).astype(np.float32)
    want = _mv_oracle(store, query, 5)
    assert again.search("multivector", [query], 5, None).ids[0].tolist() == want
    with open(token_file, "r+b") as f:  # a damaged token file: the collection rebuilds from the store
        f.seek(64)
        f.write(b"\xff\xff\xff\xff")
    rebuilt, how = IndexSet.open(COMPRESSED, DIMS, ["multivector"], store, folder)
    assert how == "rebuild" and rebuilt.search("multivector", [query], 5, None).ids[0].tolist() == want


def test_drifted_data_is_retrained_in_the_background_upkeep(tmp_path: Path) -> None:
    store = _store(tmp_path, range(60))
    indexes, _ = IndexSet.open(COMPRESSED, DIMS, ["multivector"], store, tmp_path / "snap")
    indexes.save(tmp_path / "snap")
    assert not indexes.upgrade(store, "c")  # nothing due: nothing retrained
    store.write("c", [_shifted(i) for i in range(60, 360)])
    indexes.replay(store, "c", indexes.seq)
    assert indexes.upgrade(store, "c") and indexes.saved_seq == -1  # retrained; the next snapshot writes it
    assert not indexes.upgrade(store, "c")
    query = _shifted(200).chunks[0].multivector  # finds its own chunk first through the new codes
    assert indexes.search("multivector", [query], 1, None).ids[0].tolist() == _mv_oracle(store, query, 1)
    assert indexes.sizes() == {"multivector": _chunks(range(360))}
