"""The compressed kind's fast-scan codes (4-bit IVF-PQ, SIMD scans): what the kind guaranteed with 8-bit codes
still holds with them — filters, lazy deletes and compaction, snapshots, recall against the exact oracle — and the
8-bit codes of small or older indexes keep working."""

from __future__ import annotations

from pathlib import Path

import faiss
import msgspec
import numpy as np
import pytest
from index_test_helpers import recall

from index import MultiVectorConfig, MultiVectorIndex
from index.compressed import CompressedCodes

DIM = 16
CONFIG = MultiVectorConfig(kind="compressed", nprobe=8)


def _oracle(docs: list[np.ndarray], ids: np.ndarray, queries: list[np.ndarray], k: int) -> np.ndarray:
    scores = np.array([[float((q @ d.T).max(axis=1).sum()) for d in docs] for q in queries])
    return ids[np.argsort(-scores, axis=1, kind="stable")[:, :k]]


def _fastscan(index: MultiVectorIndex) -> CompressedCodes:
    codes = index._cand
    assert isinstance(codes, CompressedCodes) and isinstance(codes.index, faiss.IndexIVFPQFastScan)
    return codes


@pytest.fixture
def built(mv_data) -> MultiVectorIndex:
    ids, docs, _ = mv_data
    index = MultiVectorIndex(DIM, CONFIG)
    index.add(ids, docs)
    return index


def test_codes_are_fast_scan_at_the_same_bytes_per_token(built: MultiVectorIndex, mv_data) -> None:
    ids, docs, queries = mv_data
    codes = _fastscan(built)
    assert codes.index.pq.nbits == 4 and codes.index.pq.M == DIM // 4  # two 4-bit codes per byte
    assert codes.index.code_size == DIM // 8 and codes.code_bytes() == codes.index.ntotal * (DIM // 8 + 8)
    assert recall(built.search(queries, 10).ids, _oracle(docs, ids, queries, 10)) >= 0.95


def test_id_set_filters(built: MultiVectorIndex, mv_data) -> None:
    ids, docs, queries = mv_data
    _fastscan(built)
    for allowed in (ids[::2], ids[::7]):
        found = built.search(queries, 10, allowed_ids=allowed).ids
        assert np.isin(found, allowed).all() and (found >= 0).all()
        mask = np.isin(ids, allowed)
        truth = _oracle([d for d, m in zip(docs, mask, strict=True) if m], ids[mask], queries, 10)
        assert recall(found, truth) >= 0.95


def test_deletes_then_compaction_rename_the_codes(mv_data) -> None:
    ids, docs, queries = mv_data
    index = MultiVectorIndex(DIM, msgspec.structs.replace(CONFIG, compact_ratio=0.3))
    index.add(ids, docs)
    codes = _fastscan(index)
    index.remove(ids[:100])  # lazy: codes stay, never proposed
    assert codes.index.ntotal == sum(d.shape[0] for d in docs)
    assert not np.isin(index.search(queries, 10).ids, ids[:100]).any()
    index.remove(ids[100:250])  # past 30% dead: compaction drops the codes and renames the survivors
    kept = sum(d.shape[0] for d in docs[250:])
    assert index._slots.n_slots == 350 and codes.index.ntotal == kept
    invlists = codes.index.invlists
    slots = np.concatenate(
        [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)) for i in range(invlists.nlist)]
    )
    assert np.array_equal(np.bincount(slots, minlength=350), [d.shape[0] for d in docs[250:]])
    found = index.search(queries, 10).ids
    assert recall(found, _oracle(docs[250:], ids[250:], queries, 10)) >= 0.95
    for i in (250, 400, 599):  # each survivor still finds itself through its renamed codes
        assert index.search([docs[i]], 1).ids[0, 0] == ids[i]


def test_snapshot_round_trip_keeps_the_fast_scan_codes(built: MultiVectorIndex, mv_data, tmp_path: Path) -> None:
    ids, _, queries = mv_data
    built.save(tmp_path, seq=3)
    again = MultiVectorIndex.load(tmp_path)
    assert again.seq == 3 and _fastscan(again).index.ntotal == _fastscan(built).index.ntotal
    for allowed in (None, ids[::3]):
        a, b = again.search(queries, 10, allowed_ids=allowed), built.search(queries, 10, allowed_ids=allowed)
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_array_equal(a.scores, b.scores)


def test_small_indexes_and_old_snapshots_keep_8_bit_codes(mv_data, tmp_path: Path) -> None:
    """Under 624 training rows a 16-centroid sub-quantizer cannot train: 8-bit codes (of fewer bits) serve until
    the growth retrain; their compaction takes the same path (remove, rename in place)."""
    ids, docs, queries = mv_data
    index = MultiVectorIndex(DIM, msgspec.structs.replace(CONFIG, compact_ratio=0.3))
    index.add(ids[:20], docs[:20])
    assert type(index._cand.index) is faiss.IndexIVFPQ
    index.save(tmp_path, seq=1)
    again = MultiVectorIndex.load(tmp_path)
    assert type(again._cand.index) is faiss.IndexIVFPQ
    again.remove(ids[:10])  # compaction of 8-bit codes
    assert again._cand.index.ntotal == sum(d.shape[0] for d in docs[10:20])
    assert recall(again.search(queries, 5).ids, _oracle(docs[10:20], ids[10:20], queries, 5)) == 1.0
    again.add(ids[20:], docs[20:])
    assert again.retrain()  # grown: the retrain trains fast-scan codes
    _fastscan(again)
    assert recall(again.search(queries, 10).ids, _oracle(docs[10:], ids[10:], queries, 10)) >= 0.95
