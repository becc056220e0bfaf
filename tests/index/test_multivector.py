"""MultiVectorIndex (exact, two-stage and compressed) against ExactMultiVectorIndex and a numpy MaxSim oracle."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest
from index_test_helpers import recall

from index import ExactMultiVectorIndex, InvalidVectorsError, MultiVectorConfig, MultiVectorIndex

DIM = 16
TWO_STAGE = MultiVectorConfig(kind="two_stage", nprobe=8)
COMPRESSED = MultiVectorConfig(kind="compressed", nprobe=8)


def _oracle(docs: list[np.ndarray], ids: np.ndarray, queries: list[np.ndarray], k: int) -> np.ndarray:
    scores = np.array([[float((q @ d.T).max(axis=1).sum()) for d in docs] for q in queries])
    return ids[np.argsort(-scores, axis=1, kind="stable")[:, :k]]


def _index(config: MultiVectorConfig, ids: np.ndarray, docs: list[np.ndarray]) -> MultiVectorIndex:
    index = MultiVectorIndex(DIM, config)
    index.add(ids, docs)
    return index


@pytest.fixture(scope="module")
def two_stage(mv_data) -> MultiVectorIndex:
    ids, docs, _ = mv_data
    return _index(TWO_STAGE, ids, docs)


def test_exact_matches_numpy_oracle(mv_data) -> None:
    ids, docs, queries = mv_data
    index = _index(MultiVectorConfig(kind="exact", dtype="float32"), ids, docs)
    scores, found = index.search(queries, 10)
    assert recall(found, _oracle(docs, ids, queries, 10)) == 1.0
    want = [max(float((queries[0] @ d.T).max(axis=1).sum()) for d in docs)]
    assert scores[0, 0] == pytest.approx(want[0], rel=1e-5)
    assert not index.two_stage and index.memory_bytes()["candidates"] == 0


def test_exact_sibling_matches_oracle(mv_data, tmp_path: Path) -> None:
    ids, docs, queries = mv_data
    exact = ExactMultiVectorIndex(DIM)
    exact.add(ids, docs)
    assert recall(exact.search(queries, 10).ids, _oracle(docs, ids, queries, 10)) == 1.0
    exact.remove(ids[:5])
    exact.save(tmp_path)
    np.testing.assert_array_equal(
        ExactMultiVectorIndex.load(tmp_path).search(queries, 5).ids, exact.search(queries, 5).ids
    )


def test_two_stage_recall(two_stage: MultiVectorIndex, mv_data) -> None:
    ids, docs, queries = mv_data
    exact = ExactMultiVectorIndex(DIM)
    exact.add(ids, docs)
    assert two_stage.two_stage
    scores, found = two_stage.search(queries, 10)
    assert recall(found, exact.search(queries, 10).ids) >= 0.95
    assert scores.dtype == np.float32 and found.dtype == np.int64


@pytest.mark.parametrize("config", [MultiVectorConfig(kind="exact"), TWO_STAGE, COMPRESSED])
def test_remove_90_percent_keeps_k_live_hits(config: MultiVectorConfig, mv_data) -> None:
    ids, docs, queries = mv_data
    index = _index(config, ids, docs)
    gone = np.random.default_rng(1).choice(ids, size=540, replace=False)
    for chunk in np.array_split(gone, 6):
        index.remove(chunk)
    assert len(index) == 60
    found = index.search(queries, 10).ids
    assert (found >= 0).all() and not np.isin(found, gone).any()
    live = ~np.isin(ids, gone)
    keep = [d for d, ok in zip(docs, live, strict=True) if ok]
    assert recall(found, _oracle(keep, ids[live], queries, 10)) >= 0.95


@pytest.mark.parametrize("config", [MultiVectorConfig(kind="exact"), TWO_STAGE, COMPRESSED])
def test_filtered_search(config: MultiVectorConfig, mv_data) -> None:
    ids, docs, queries = mv_data
    index = _index(config, ids, docs)
    for allowed in (ids[::2], ids[::50]):
        found = index.search(queries, 10, allowed_ids=allowed).ids
        assert np.isin(found, allowed).all() and (found >= 0).all()
        mask = np.isin(ids, allowed)
        sub = [d for d, ok in zip(docs, mask, strict=True) if ok]
        assert recall(found, _oracle(sub, ids[mask], queries, 10)) >= 0.95
    few = index.search(queries[:2], 5, allowed_ids=ids[:2])
    assert (few.ids[:, 2:] == -1).all() and np.isneginf(few.scores[:, 2:]).all()


@pytest.mark.parametrize("config", [MultiVectorConfig(kind="exact"), TWO_STAGE, COMPRESSED])
def test_upsert_and_save_load(config: MultiVectorConfig, mv_data, tmp_path: Path) -> None:
    ids, docs, queries = mv_data
    index = _index(config, ids, docs)
    index.add(ids[:1], [queries[0]])
    assert len(index) == len(ids)
    assert index.search(queries[:1], 1).ids[0, 0] == ids[0]
    index.remove(ids[300:])
    before = index.search(queries, 10)
    filtered = index.search(queries, 10, allowed_ids=ids[::3])
    index.save(tmp_path, seq=9)
    again = MultiVectorIndex.load(tmp_path)
    assert again.seq == 9 and len(again) == 300 and again.two_stage == index.two_stage
    np.testing.assert_array_equal(again.search(queries, 10).ids, before.ids)
    np.testing.assert_array_equal(again.search(queries, 10).scores, before.scores)
    np.testing.assert_array_equal(again.search(queries, 10, allowed_ids=ids[::3]).ids, filtered.ids)


def test_auto_switches_to_two_stage(mv_data) -> None:
    ids, docs, queries = mv_data
    index = MultiVectorIndex(DIM, MultiVectorConfig(kind="auto", auto_exact_max=400))
    index.add(ids[:300], docs[:300])
    assert not index.two_stage
    index.add(ids[300:], docs[300:])
    assert index.two_stage and index.memory_bytes()["candidates"] > 0
    assert recall(index.search(queries, 10).ids, _oracle(docs, ids, queries, 10)) >= 0.95


def test_storage_is_float16_and_compacts(mv_data) -> None:
    ids, docs, _ = mv_data
    index = _index(MultiVectorConfig(kind="exact", compact_ratio=0.5), ids, docs)
    n_tok = sum(d.shape[0] for d in docs)
    assert index.memory_bytes()["store"] < n_tok * DIM * 2 + len(ids) * 16 + 1
    index.remove(ids[:400])
    assert index.memory_bytes()["store"] < n_tok * DIM * 2 * 0.5


def test_invalid_documents(mv_data) -> None:
    index = MultiVectorIndex(DIM)
    with pytest.raises(InvalidVectorsError):
        index.add([1], [np.zeros((0, DIM), np.float32)])
    with pytest.raises(InvalidVectorsError):
        index.add([1], [np.zeros((3, DIM + 1), np.float32)])
    assert (index.search([np.ones((2, DIM), np.float32)], 3).ids == -1).all()


@pytest.mark.parametrize(
    "config",
    [MultiVectorConfig(kind="exact", dtype="float32"), TWO_STAGE, COMPRESSED],
    ids=["exact", "two_stage", "compressed"],
)
def test_a_rolling_window_of_upserts_keeps_the_slots_bounded(
    config: MultiVectorConfig, mv_data, tmp_path: Path
) -> None:
    """Compaction renumbers the live documents, so a rolling window of upserts and deletes holds a bounded number
    of slots (it grew by a slot per write before); results match the exact sibling before and after each pass."""
    _, docs, queries = mv_data
    rng = np.random.default_rng(4)

    def fresh(j: int) -> np.ndarray:  # a new document near a corpus one (no exact ties between ids)
        d = docs[j % len(docs)]
        return (d + 0.05 * rng.standard_normal(d.shape)).astype(np.float32)

    index, exact = MultiVectorIndex(DIM, config), ExactMultiVectorIndex(DIM)
    never = MultiVectorIndex(DIM, msgspec.structs.replace(config, compact_ratio=1.0))  # same math, no compaction
    for ix in (index, exact, never):
        ix.add(np.arange(400, dtype=np.int64), docs[:400])  # enough tokens to train the candidate stage
    passes, before = 0, index._slots.n_slots
    for step in range(400, 2400, 16):
        new_ids = np.arange(step, step + 16, dtype=np.int64)
        batch, replacements = [fresh(step + i) for i in range(16)], [fresh(step + i + 7) for i in range(3)]
        for ix in (index, exact, never):
            ix.add(new_ids, batch)
            ix.add(new_ids[:3], replacements)  # replaced at once
            ix.remove(np.arange(step - 400, step - 384, dtype=np.int64))
        passes += index._slots.n_slots < before
        before = index._slots.n_slots
        if step % 320 == 0:
            allowed = new_ids[::2]
            found = index.search(queries, 10)
            if config.kind == "exact":
                np.testing.assert_array_equal(found.ids, never.search(queries, 10).ids)
                np.testing.assert_array_equal(found.scores, never.search(queries, 10).scores)
            assert recall(found.ids, exact.search(queries, 10).ids) >= 0.95
            assert np.isin(index.search(queries, 4, allowed_ids=allowed).ids, allowed).all()
    assert len(index) == 400 and passes >= 2 and index._slots.n_slots < 1200  # not 400 + 2000 * 19 / 16
    assert never._slots.n_slots == 400 + 2000 * 19 // 16
    assert index._store.n_slots == index._slots.n_slots
    index.save(tmp_path, seq=3)
    again = MultiVectorIndex.load(tmp_path)
    np.testing.assert_array_equal(again.search(queries, 10).ids, index.search(queries, 10).ids)
    again.remove(np.arange(2000, 2100, dtype=np.int64))  # the loaded index keeps compacting correctly
    exact.remove(np.arange(2000, 2100, dtype=np.int64))
    found = again.search(queries, 10).ids
    assert not np.isin(found, np.arange(2000, 2100)).any() and recall(found, exact.search(queries, 10).ids) >= 0.95
