"""The compressed multi-vector kind against a naive MaxSim oracle: memory split, pooling, remap, snapshots that
reference the token file, corruption, drift, growth and a retrain running while documents are added."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import msgspec
import numpy as np
import pytest
from index_test_helpers import recall

from benchmarks.synthetic import clustered_multivector
from index import IndexConfigError, IndexCorruptError, MultiVectorConfig, MultiVectorIndex
from index.storage import expected_bytes_per_doc
from poolers.token_pooling import pool_tokens

DIM = 16
CONFIG = MultiVectorConfig(kind="compressed", nprobe=8)


def _oracle(docs: list[np.ndarray], ids: np.ndarray, queries: list[np.ndarray], k: int) -> np.ndarray:
    scores = np.array([[float((q @ d.T).max(axis=1).sum()) for d in docs] for q in queries])
    return ids[np.argsort(-scores, axis=1, kind="stable")[:, :k]]


def _built(ids: np.ndarray, docs: list[np.ndarray], config: MultiVectorConfig = CONFIG, **kw) -> MultiVectorIndex:
    index = MultiVectorIndex(DIM, config, **kw)
    index.add(ids, docs)
    return index


def _token_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("tokens.*.f16"))


def test_codes_in_ram_vectors_on_disk(mv_data) -> None:
    ids, docs, queries = mv_data
    index = _built(ids, docs)
    n_tok = sum(d.shape[0] for d in docs)
    mem = index.memory_bytes()
    assert index.compressed and index.two_stage
    assert mem["disk"] == n_tok * DIM * 2 and mem["working"] == 0
    assert mem["store"] == len(ids) * 16  # extents only: no token row in the heap
    assert recall(index.search(queries, 10).ids, _oracle(docs, ids, queries, 10)) >= 0.95
    assert mem["working"] == index.memory_bytes()["working"] == 0  # searching built no working copy
    per_doc = expected_bytes_per_doc(CONFIG, DIM, 20, two_stage=True)
    rng = np.random.default_rng(0)
    same = _built(np.arange(500), [rng.standard_normal((20, DIM)).astype(np.float32) for _ in range(500)])
    assert same.bytes_per_doc() == per_doc  # RAM + disk, as the heap kinds count it
    assert same.ram_bytes_per_doc() == per_doc - 20 * DIM * 2


def test_pooling_and_remap(mv_data) -> None:
    ids, docs, queries = mv_data
    index = _built(ids, docs, msgspec.structs.replace(CONFIG, pool_factor=2))
    pooled = [pool_tokens(d, 2) for d in docs]
    assert index.memory_bytes()["disk"] == sum(p.shape[0] for p in pooled) * DIM * 2
    assert recall(index.search(queries, 10).ids, _oracle(pooled, ids, queries, 10)) >= 0.95
    before = index.search(queries, 10)
    index.remap_ids(ids, ids + 10_000)
    after = index.search(queries, 10)
    np.testing.assert_array_equal(after.ids, before.ids + 10_000)
    np.testing.assert_array_equal(after.scores, before.scores)


def test_float32_rescoring_matches_the_oracle_scores(mv_data) -> None:
    ids, docs, queries = mv_data
    index = _built(ids, docs, msgspec.structs.replace(CONFIG, dtype="float32"))
    scores, found = index.search(queries[:3], 5)
    by_id = dict(zip(ids.tolist(), docs, strict=True))
    for q, row, ss in zip(queries[:3], found, scores, strict=True):
        want = [float((q @ by_id[i].astype(np.float16).astype(np.float32).T).max(axis=1).sum()) for i in row]
        np.testing.assert_allclose(ss, want, rtol=1e-5)


def test_snapshot_references_the_token_file(mv_data, tmp_path: Path) -> None:
    ids, docs, queries = mv_data
    index = _built(ids[:300], docs[:300])
    temp = index._store.path
    assert temp is not None and temp.parent != tmp_path
    index.save(tmp_path, seq=1)
    assert not temp.exists() and index.directory == tmp_path  # the first save's directory keeps the file
    [live] = _token_files(tmp_path)
    index.add(ids[300:], docs[300:])
    index.save(tmp_path, seq=2)
    assert _token_files(tmp_path) == [live]  # appended in place: no copy per snapshot
    again = MultiVectorIndex.load(tmp_path)
    assert again.seq == 2 and len(again) == len(ids) and again.compressed
    np.testing.assert_array_equal(again.search(queries, 10).ids, index.search(queries, 10).ids)
    np.testing.assert_array_equal(again.search(queries, 10).scores, index.search(queries, 10).scores)


def test_load_cuts_rows_written_after_the_snapshot(mv_data, tmp_path: Path) -> None:
    """A process killed after more adds: the file holds rows the snapshot does not; load drops them (the store
    replays those writes)."""
    ids, docs, queries = mv_data
    index = _built(ids[:300], docs[:300], directory=tmp_path)
    index.save(tmp_path, seq=1)
    [live] = _token_files(tmp_path)
    size = live.stat().st_size
    index.add(ids[300:], docs[300:])
    assert live.stat().st_size > size
    again = MultiVectorIndex.load(tmp_path)
    assert len(again) == 300 and live.stat().st_size == size
    assert not np.isin(again.search(queries, 10).ids, ids[300:]).any()
    again.add(ids[300:], docs[300:])  # the replay lands in the same file
    assert recall(again.search(queries, 10).ids, _oracle(docs, ids, queries, 10)) >= 0.95


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_token_file_is_named(damage: str, mv_data, tmp_path: Path) -> None:
    ids, docs, _ = mv_data
    _built(ids, docs, directory=tmp_path).save(tmp_path, seq=1)
    [live] = _token_files(tmp_path)
    if damage == "flip":
        with open(live, "r+b") as f:
            f.seek(1000)
            byte = f.read(1)
            f.seek(1000)
            f.write(bytes([byte[0] ^ 0x40]))
    elif damage == "truncate":
        os.truncate(live, live.stat().st_size - 2 * DIM)
    else:
        live.unlink()
    with pytest.raises(IndexCorruptError) as err:
        MultiVectorIndex.load(tmp_path)
    assert err.value.path == live


def test_export_copy_leaves_the_home_alone(mv_data, tmp_path: Path) -> None:
    ids, docs, queries = mv_data
    home, export = tmp_path / "home", tmp_path / "export"
    index = _built(ids, docs, directory=home)
    index.save(home, seq=1)
    index.save(export, seq=1)
    assert index.directory == home and len(_token_files(home)) == len(_token_files(export)) == 1
    index.add(ids[:5] + 100_000, docs[:5])  # appends go on at home
    copy = MultiVectorIndex.load(export)
    assert len(copy) == len(ids)
    np.testing.assert_array_equal(copy.search(queries, 10).ids, MultiVectorIndex.load(home).search(queries, 10).ids)


def test_compaction_writes_a_new_file_and_renames_the_codes(mv_data, tmp_path: Path) -> None:
    ids, docs, queries = mv_data
    index = _built(ids, docs, msgspec.structs.replace(CONFIG, compact_ratio=0.3), directory=tmp_path)
    index.save(tmp_path, seq=1)
    [old] = _token_files(tmp_path)
    codes = index._cand.index.ntotal
    index.remove(ids[:250])  # past 30% dead: compaction
    assert index._slots.n_slots == 350 and index._cand.index.ntotal < codes
    assert len(_token_files(tmp_path)) == 2  # the snapshot still names the old file: kept until the next save
    keep = [d for i, d in zip(ids, docs, strict=True) if i not in set(ids[:250].tolist())]
    assert recall(index.search(queries, 10).ids, _oracle(keep, ids[250:], queries, 10)) >= 0.95
    index.save(tmp_path, seq=2)
    assert old not in _token_files(tmp_path) and len(_token_files(tmp_path)) == 1  # the old file went at the save
    again = MultiVectorIndex.load(tmp_path)
    np.testing.assert_array_equal(again.search(queries, 10).ids, index.search(queries, 10).ids)


def _shifted(n: int, seed: int) -> list[np.ndarray]:
    """Documents from another distribution than ``mv_data`` (other centres, other spread)."""
    docs, _ = clustered_multivector(n, DIM, 1, doc_len=(8, 40), query_len=8, seed=seed)
    flip = np.sign(np.random.default_rng(seed).standard_normal(DIM)).astype(np.float32) * 3.0
    return [d * flip for d in docs]


def test_drift_and_growth_ask_for_a_retrain(mv_data) -> None:
    ids, docs, _ = mv_data
    index = _built(ids[:300], docs[:300])
    index.add(ids[300:], docs[300:])  # the same distribution, 2x: neither drift nor growth
    assert index.retrain_plan() is None
    index.add(np.arange(300) + 10_000, _shifted(300, 7))
    plan = index.retrain_plan()
    assert plan is not None and plan.reason == "drift"
    assert index.retrain() and index.retrain_plan() is None  # new codes trained on everything: no drift left
    small = _built(ids[:30], docs[:30], msgspec.structs.replace(CONFIG, retrain_growth=4.0))
    small.add(ids[30:], docs[30:])
    grown = small.retrain_plan()
    assert grown is not None and grown.reason == "growth"


def test_retrain_beside_writes_loses_nothing(mv_data) -> None:
    """The heavy part of a retrain runs in another thread while documents are added, replaced and removed; the
    swap then encodes what landed meanwhile: every write is searchable, no removed id comes back."""
    ids, docs, queries = mv_data
    index = _built(ids[:300], docs[:300])
    plan = index.retrain_plan(force=True)
    assert plan is not None
    done: list = []
    worker = threading.Thread(target=lambda: done.append(plan.run()))
    worker.start()
    for a in range(300, 600, 50):
        index.add(ids[a : a + 50], docs[a : a + 50])
        index.remove(ids[a - 300 : a - 290])
    index.add(ids[:5], [-d for d in docs[:5]])  # upserts of ids the plan saw, with new vectors
    worker.join()
    assert index.retrain_apply(done[0])
    gone = np.concatenate([ids[a - 300 : a - 290] for a in range(300, 600, 50)])
    gone = gone[~np.isin(gone, ids[:5])]
    found = index.search(queries, 10).ids
    assert not np.isin(found, gone).any()
    live = ~np.isin(ids, gone)
    now = [-d if i < 5 else d for i, d in enumerate(docs)]
    keep = [d for d, ok in zip(now, live, strict=True) if ok]
    assert recall(found, _oracle(keep, ids[live], queries, 10)) >= 0.95
    for i in (0, 450, 599):  # a document finds itself first, the upserted one by its new vectors
        assert index.search([now[i]], 1).ids[0, 0] == ids[i]


def test_a_compaction_voids_a_running_retrain(mv_data) -> None:
    ids, docs, _ = mv_data
    index = _built(ids, docs, msgspec.structs.replace(CONFIG, compact_ratio=0.2))
    plan = index.retrain_plan(force=True)
    assert plan is not None
    index.remove(ids[:200])  # compaction renumbers the slots
    assert not index.retrain_apply(plan.run())
    assert index.retrain()


def test_auto_moves_to_disk_past_its_threshold(mv_data) -> None:
    ids, docs, queries = mv_data
    config = MultiVectorConfig(kind="auto", auto_exact_max=100, auto_compressed_min=8_000, nprobe=8)
    index = _built(ids[:150], docs[:150], config)
    assert index.two_stage and not index.compressed
    index.add(ids[150:], docs[150:])
    assert index.compressed and index.memory_bytes()["working"] == 0 and index.memory_bytes()["disk"] > 0
    assert recall(index.search(queries, 10).ids, _oracle(docs, ids, queries, 10)) >= 0.95


def test_train_before_a_streaming_build(mv_data) -> None:
    ids, docs, queries = mv_data
    index = MultiVectorIndex(DIM, CONFIG)
    index.train(np.concatenate(docs[::3]), n_tokens=sum(d.shape[0] for d in docs))
    for a in range(0, 600, 100):
        index.add(ids[a : a + 100], docs[a : a + 100])
    assert index.retrain_plan() is None
    assert recall(index.search(queries, 10).ids, _oracle(docs, ids, queries, 10)) >= 0.95
    with pytest.raises(IndexConfigError):
        MultiVectorIndex(DIM, MultiVectorConfig(kind="two_stage")).train(np.concatenate(docs))
    with pytest.raises(IndexConfigError):
        MultiVectorConfig(kind="compressed", first_stage="binary")
