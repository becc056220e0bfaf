"""The Store's behaviour against hand-computed expectations and against sqlite itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from retrieval.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    DocumentNotFoundError,
    InvalidRequestError,
    StorageError,
)
from retrieval.store import ChunkRecord, DocumentRecord, Store
from tests.retrieval.store._docs import DIM, assert_matches, doc_id, make_doc, n_chunks


def _ids(store: Store, collection: str = "c") -> list[int]:
    return [row.chunk_id for batch in store.iter_chunks(collection) for row in batch]


def test_collections_lifecycle(store: Store) -> None:
    store.create_collection("b", {"bm25": True}, dims={"dense": DIM})
    assert [c.name for c in store.list_collections()] == ["b", "c"]
    row = store.get_collection("b")
    assert (row.config, row.documents, row.chunks, row.dims) == ({"bm25": True}, 0, 0, {"dense": DIM})
    with pytest.raises(CollectionExistsError):
        store.create_collection("b", {})
    with pytest.raises(CollectionNotFoundError):
        store.get_collection("zz")
    with pytest.raises(InvalidRequestError):
        store.create_collection("x", {"bad": float("nan")})


def test_update_collection_replaces_its_settings_durably(store: Store) -> None:
    store.create_collection("b", {"bm25": True, "fusion": {"method": "rrf"}})
    seq = store.update_collection("b", {"bm25": True, "fusion": {"method": "dbsf"}})
    assert seq == store.last_seq() and store.get_collection("b").config["fusion"] == {"method": "dbsf"}
    with pytest.raises(CollectionNotFoundError):
        store.update_collection("zz", {})
    with Store.open(store.path) as again:  # committed: another connection reads it from the file
        assert again.get_collection("b").config["fusion"] == {"method": "dbsf"}


def test_write_then_read_back(store: Store) -> None:
    docs = [make_doc(i) for i in range(6)]
    result = store.write("c", docs)
    total = sum(n_chunks(i, 0) for i in range(6))
    assert result.added.dtype == np.int64 and len(result.added) == total and result.removed.size == 0
    assert np.all(np.diff(result.added) > 0)
    for doc in docs:
        got = store.get_document("c", doc.id)
        assert (got.text, got.metadata, got.content_hash, got.source, got.seq) == (
            doc.text,
            doc.metadata,
            doc.content_hash,
            doc.source,
            result.seq,
        )
        expected_keys = (doc.id,) if len(doc.chunks) == 1 else tuple(f"{doc.id}#{j}" for j in range(len(doc.chunks)))
        assert got.chunk_keys == expected_keys
    rows = store.get_chunks("c", result.added, vectors=("dense", "multivector", "sparse"))
    chunks = [c for d in docs for c in d.chunks]
    assert [r.chunk_id for r in rows] == result.added.tolist()
    for row, chunk, owner in zip(rows, chunks, [d for d in docs for _ in d.chunks], strict=True):
        assert (row.doc_id, row.text, row.position, row.page, row.char_start, row.char_end) == (
            owner.id,
            chunk.text,
            chunk.position,
            chunk.page,
            chunk.char_start,
            chunk.char_end,
        )
        assert row.metadata == owner.metadata and row.source == owner.source
        assert_matches({"dense": row.dense, "multivector": row.multivector, "sparse": row.sparse}, chunk)
    assert store.get_collection("c").dims == {"dense": DIM, "multivector": DIM}


def test_get_chunks_order_missing_and_no_vectors(store: Store) -> None:
    added = store.write("c", [make_doc(i) for i in range(3)]).added
    wanted = np.array([added[-1], 999_999, added[0], added[-1]], dtype=np.int64)
    rows = store.get_chunks("c", wanted)
    assert [r.chunk_id for r in rows] == [added[-1], added[0], added[-1]]
    assert all(r.dense is None and r.multivector is None and r.sparse is None for r in rows)
    assert store.get_chunks("c", np.zeros(0, np.int64)) == []
    with pytest.raises(InvalidRequestError):
        store.get_chunks("c", added, vectors=("colbert",))  # type: ignore[arg-type]


def test_get_chunk_by_key(store: Store) -> None:
    store.write("c", [make_doc(0), make_doc(1)])  # n_chunks: 1 and 2
    single = store.get_chunk_by_key("c", "d0", vectors=("dense",))
    assert single.doc_id == "d0" and single.dense is not None and single.dense.shape == (DIM,)
    assert store.get_chunk_by_key("c", "d1#1").position == 1
    with pytest.raises(DocumentNotFoundError):
        store.get_chunk_by_key("c", "d1")


def test_upsert_replaces_chunks_and_logs_removals(store: Store) -> None:
    first = store.write("c", [make_doc(1, 0), make_doc(2, 0)])
    old = [r.chunk_id for r in store.get_chunks("c", first.added) if r.doc_id == "d1"]
    second = store.write("c", [make_doc(1, 1)])
    assert second.seq == first.seq + 1
    assert sorted(second.removed.tolist()) == sorted(old)
    assert len(second.added) == n_chunks(1, 1) and second.added.min() > first.added.max()
    assert store.get_document("c", "d1").content_hash == "1:1"
    live = set(_ids(store))
    assert not live & set(old) and set(second.added.tolist()) <= live
    assert store.removed_after("c", first.seq).tolist() == sorted(old)
    assert store.get_collection("c").chunks == n_chunks(1, 1) + n_chunks(2, 0)


def test_skip_unchanged(store: Store) -> None:
    first = store.write("c", [make_doc(1), make_doc(2)])
    old_d2 = {r.chunk_id for r in store.get_chunks("c", first.added) if r.doc_id == "d2"}
    again = store.write("c", [make_doc(1), make_doc(2, 1)])
    assert again.skipped == ["d1"] and len(again.added) == n_chunks(2, 1)
    assert set(again.removed.tolist()) == old_d2
    forced = store.write("c", [make_doc(1)], skip_unchanged=False)
    assert forced.skipped == [] and len(forced.removed) == len(forced.added) == n_chunks(1, 0)
    assert store.content_hashes("c", ["d1", "d2", "nope"]) == {"d1": "1:0", "d2": "2:1"}


def test_delete_is_idempotent(store: Store) -> None:
    added = store.write("c", [make_doc(1), make_doc(2)]).added
    gone = store.write("c", deletes=["d1", "unknown"])
    assert len(gone.removed) == n_chunks(1, 0) and set(gone.removed.tolist()) <= set(added.tolist())
    again = store.write("c", deletes=["d1"])
    assert again.removed.size == 0 and again.added.size == 0
    with pytest.raises(DocumentNotFoundError):
        store.get_document("c", "d1")
    assert store.get_collection("c").documents == 1


def test_seq_is_global_and_monotonic(store: Store) -> None:
    store.create_collection("other", {})
    seqs = [store.last_seq()]
    for i in range(4):
        seqs.append(store.write("c" if i % 2 else "other", [make_doc(i)]).seq)
        assert store.last_seq() == seqs[-1]
    assert seqs == list(range(seqs[0], seqs[0] + 5))


def test_write_is_validated_before_anything_is_stored(store: Store) -> None:
    bad_vector = DocumentRecord(
        "x", "abc", {}, "h", chunks=(ChunkRecord("abc", 0, 0, 3, dense=np.array([1.0, np.nan])),)
    )
    wide = DocumentRecord("w", "abc", {}, "h", chunks=(ChunkRecord("abc", 0, 0, 3, dense=np.ones(DIM + 1)),))
    cases = {
        "vectors.dense": [make_doc(1), bad_vector],
        "metadata": [DocumentRecord("m", "", {"v": float("inf")}, "h")],
        "chunks.char_start": [DocumentRecord("r", "ab", {}, "h", chunks=(ChunkRecord("ab", 0, 0, 3),))],
        "chunks.position": [DocumentRecord("p", "ab", {}, "h", chunks=(ChunkRecord("a", 0, 0, 1),) * 2)],
        "id": [make_doc(1), make_doc(1)],
    }
    before = store.last_seq()
    for param, docs in cases.items():
        with pytest.raises(InvalidRequestError) as err:
            store.write("c", docs)
        assert err.value.param == param
    store.write("c", [make_doc(5)])
    with pytest.raises(InvalidRequestError) as err:
        store.write("c", [make_doc(6), wide])  # the width differs from the batch
    with pytest.raises(InvalidRequestError) as err:
        store.write("c", [wide])  # the width differs from the one pinned by d5
    assert (err.value.received, err.value.allowed) == (DIM + 1, DIM)
    assert store.last_seq() == before + 1 and store.get_collection("c").documents == 1


def test_key_collision_rolls_back_whole_write(store: Store) -> None:
    store.write("c", [make_doc(1)])  # two chunks: d1#0, d1#1
    clash = DocumentRecord("d1#0", "x", {}, "h", chunks=(ChunkRecord("x", 0, 0, 1),))
    with pytest.raises(InvalidRequestError):
        store.write("c", [make_doc(7), clash])
    with pytest.raises(DocumentNotFoundError):
        store.get_document("c", doc_id(7))


def test_unknown_collection(store: Store) -> None:
    with pytest.raises(CollectionNotFoundError):
        store.write("nope", [make_doc(1)])
    with pytest.raises(CollectionNotFoundError):
        store.write("nope", deletes=["a"])
    with pytest.raises(CollectionNotFoundError):
        store.get_document("nope", "a")


def test_delete_collection_removes_every_row(store: Store, tmp_path: Path) -> None:
    store.create_collection("keep", {})
    store.write("keep", [make_doc(9)])
    store.write("c", [make_doc(1), make_doc(2)])
    store.write("c", [make_doc(1, 1)])
    store.delete_collection("c")
    with pytest.raises(CollectionNotFoundError):
        store.get_collection("c")
    with pytest.raises(CollectionNotFoundError):
        store.delete_collection("c")
    conn = sqlite3.connect(store.path)
    for table in ("documents", "chunks", "removals", "vector_dims"):
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE collection = 'c'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM chunks WHERE collection = 'keep'").fetchone()[0] == n_chunks(9, 0)
    conn.close()
    store.create_collection("c", {})  # the name is free again, with no pinned widths
    assert store.get_collection("c").documents == 0 and store.get_collection("c").dims == {}


def test_stats_bytes_match_hand_count(store: Store) -> None:
    docs = [make_doc(i) for i in range(5)] + [
        DocumentRecord("é", "héllo", {"k": "ü"}, "h", chunks=(ChunkRecord("héllo", 0, 0, 5),))
    ]
    store.write("c", docs)
    chunks = [c for d in docs for c in d.chunks]
    with_vectors = [c for c in chunks if c.dense is not None]
    assert store.stats("c") == {
        "documents": 6,
        "chunks": len(chunks),
        "dense_bytes": 4 * DIM * len(with_vectors),
        "multivector_bytes": sum(2 * np.asarray(c.multivector).size for c in with_vectors),
        "sparse_bytes": sum(8 * len(c.sparse or {}) for c in with_vectors),
        "text_bytes": sum(len(d.text.encode()) for d in docs) + sum(len(c.text.encode()) for c in chunks),
        "metadata_bytes": sum(len(store_json(d.metadata)) for d in docs),
    }


def store_json(metadata: dict[str, object]) -> bytes:
    import json

    return json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode()


def test_chunk_ids_where_with_hand_written_fragment(store: Store) -> None:
    result = store.write("c", [make_doc(i) for i in range(10)])
    rows = store.get_chunks("c", result.added)
    fragment = "json_extract(metadata, ?) = ? AND json_extract(metadata, ?) >= ?"
    got = store.chunk_ids_where("c", fragment, ["$.tag", "t1", "$.number", 4])
    expected = [r.chunk_id for r in rows if r.metadata["tag"] == "t1" and r.metadata["number"] >= 4]
    assert got.dtype == np.int64 and got.tolist() == sorted(expected) and expected
    assert store.chunk_ids_where("c", "json_extract(metadata, ?) = ?", ["$.tag", "none"]).size == 0
    with pytest.raises(StorageError):
        store.chunk_ids_where("c", "no_such_function(metadata)", [])


def test_reopen_after_close_sees_everything(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path) as s:
        s.create_collection("c", {"x": [1, 2]})
        s.write("c", [make_doc(i) for i in range(4)])
        last = s.write("c", [make_doc(1, 1)], deletes=["d2"])
        before = [r.chunk_id for b in s.iter_chunks("c") for r in b]
    with Store.open(path) as s:
        assert s.last_seq() == last.seq and s.get_collection("c").config == {"x": [1, 2]}
        assert [r.chunk_id for b in s.iter_chunks("c") for r in b] == before
        assert s.get_document("c", "d1").content_hash == "1:1"
        assert s.removed_after("c", 0).size == n_chunks(1, 0) + n_chunks(2, 0)
        new = s.write("c", [make_doc(8)])
        assert new.seq == last.seq + 1 and new.added.min() > max(before)  # ids never reused


def test_iter_chunks_batches_and_bounds(store: Store) -> None:
    seqs = [store.write("c", [make_doc(2 * i), make_doc(2 * i + 1)]).seq for i in range(5)]
    everything = [r for b in store.iter_chunks("c", batch=3) for r in b]
    assert [r.chunk_id for r in everything] == sorted(r.chunk_id for r in everything)
    assert len(everything) == sum(n_chunks(i, 0) for i in range(10))
    batches = list(store.iter_chunks("c", batch=3))
    assert all(len(b) == 3 for b in batches[:-1]) and 1 <= len(batches[-1]) <= 3
    window = [r for b in store.iter_chunks("c", after_seq=seqs[1], upto_seq=seqs[3], batch=2) for r in b]
    assert {r.seq for r in window} == {seqs[2], seqs[3]}
    assert [r.chunk_id for r in window] == [r.chunk_id for r in everything if seqs[1] < r.seq <= seqs[3]]
    assert list(store.iter_chunks("c", after_seq=seqs[-1])) == []
