"""DenseIndex against the numpy oracle and ExactDenseIndex, for every kind."""

from __future__ import annotations

from pathlib import Path

import faiss
import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from index_test_helpers import DIM, recall

from index import (
    DenseConfig,
    DenseIndex,
    ExactDenseIndex,
    InvalidIdsError,
    InvalidQueryError,
    InvalidVectorsError,
)

KINDS = ["flat", "hnsw", "ivf_flat", "ivf_sq8", "ivf_pq"]
FLOOR = {"flat": 1.0, "hnsw": 0.95, "ivf_flat": 0.95, "ivf_sq8": 0.9, "ivf_pq": 0.3}


def _oracle(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :k]]


def _index(kind: str, ids: np.ndarray, x: np.ndarray, **kw: object) -> DenseIndex:
    cfg = DenseConfig(kind=kind, factory=kw.pop("factory", None), metric="ip", **kw)  # type: ignore[arg-type]
    index = DenseIndex(DIM, cfg)
    index.add(ids, x)
    return index


def test_a_rolling_window_of_upserts_keeps_the_flat_slots_bounded(tmp_path: Path) -> None:
    """Flat is id-native (FAISS removes vectors itself), but the slot map grew by a slot per write until its
    ids were renumbered in place once dead slots pass `compact_ratio`; results stay exact throughout."""
    rng = np.random.default_rng(3)
    index, exact = DenseIndex(DIM, DenseConfig(kind="flat", metric="ip")), ExactDenseIndex(DIM, "ip")
    q = rng.standard_normal((5, DIM)).astype(np.float32)
    for step in range(0, 4000, 16):
        new_ids = np.arange(step, step + 16, dtype=np.int64)
        x = rng.standard_normal((16, DIM)).astype(np.float32)
        old = np.arange(max(0, step - 64), max(0, step - 48), dtype=np.int64)
        for ix in (index, exact):
            ix.add(new_ids, x)
            ix.add(new_ids[:3], x[3:6] * 0.5)  # replaced in place
            ix.remove(old)
        if step % 800 == 0:
            np.testing.assert_array_equal(index.search(q, 10).ids, exact.search(q, 10).ids)
            allowed = new_ids[::2]
            np.testing.assert_array_equal(
                index.search(q, 4, allowed_ids=allowed).ids, exact.search(q, 4, allowed_ids=allowed).ids
            )
    assert len(index) == 64 and index._slots.n_slots < 200  # not 4000 * 19 / 16
    index.save(tmp_path, seq=2)
    again = DenseIndex.load(tmp_path)
    np.testing.assert_array_equal(again.search(q, 10).ids, exact.search(q, 10).ids)


@pytest.mark.parametrize(
    ("kind", "factory"),
    [("ivf_flat", None), ("ivf_sq8", None), ("ivf_pq", None), ("factory", "IDMap,Flat"), ("factory", "OPQ4,IVF8,PQ4")],
)
def test_a_rolling_window_of_upserts_keeps_id_native_slots_bounded(
    kind: str, factory: str | None, tmp_path: Path
) -> None:
    """IVF kinds (and id maps from a factory string) renumber the ids inside FAISS past `compact_ratio` instead
    of keeping a slot per write; the answers equal those of the same index that never compacts (same trained
    quantizers, same codes), also after a save and load."""
    rng = np.random.default_rng(5)
    cfg = DenseConfig(kind=kind, factory=factory, nprobe=4, metric="ip")  # type: ignore[arg-type]
    index, never = DenseIndex(DIM, cfg), DenseIndex(DIM, msgspec.structs.replace(cfg, compact_ratio=1.0))
    q = rng.standard_normal((6, DIM)).astype(np.float32)
    first = rng.standard_normal((2000, DIM)).astype(np.float32)
    for ix in (index, never):
        ix.add(np.arange(2000, dtype=np.int64), first)
    for step in range(2000, 5000, 50):
        new_ids = np.arange(step, step + 50, dtype=np.int64)
        x = rng.standard_normal((50, DIM)).astype(np.float32)
        for ix in (index, never):
            ix.add(new_ids, x)
            ix.add(new_ids[:5], x[5:10] * 0.5)  # replaced in place
            ix.remove(np.arange(step - 2000, step - 1950, dtype=np.int64))
        if step % 1000 == 0:
            for allowed in (None, new_ids[::2]):
                got, want = index.search(q, 10, allowed_ids=allowed), never.search(q, 10, allowed_ids=allowed)
                np.testing.assert_array_equal(got.ids, want.ids)
                np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5)
    assert len(index) == len(never) == 2000
    assert index._slots.n_slots < 3000 and never._slots.n_slots == 2000 + 3000 * 55 // 50
    index.save(tmp_path, seq=4)
    again = DenseIndex.load(tmp_path)
    np.testing.assert_array_equal(again.search(q, 10).ids, never.search(q, 10).ids)
    again.remove(np.arange(4900, 4950, dtype=np.int64))  # removal by id still works on the renumbered index
    assert not np.isin(again.search(q, 50).ids, np.arange(4900, 4950)).any() and len(again) == 1950


@pytest.mark.parametrize("kind", KINDS)
def test_recall_against_numpy_oracle(kind: str, dense_data) -> None:
    ids, x, q = dense_data
    index = _index(kind, ids, x)
    scores, found = index.search(q, 10)
    assert scores.dtype == np.float32 and found.dtype == np.int64 and found.shape == (len(q), 10)
    assert index.kind == kind and len(index) == len(ids)
    assert recall(found, _oracle(x, ids, q, 10)) >= FLOOR[kind]
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_exact_scores_match_numpy(dense_data) -> None:
    ids, x, q = dense_data
    scores, found = _index("flat", ids, x).search(q, 5)
    np.testing.assert_array_equal(found, _oracle(x, ids, q, 5))
    np.testing.assert_allclose(scores, np.sort(q @ x.T, axis=1)[:, ::-1][:, :5], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("factory", ["IVF32,Flat", "HNSW16", "IVF16,SQ8", "Flat"])
def test_factory_strings(factory: str, dense_data) -> None:
    ids, x, q = dense_data
    index = _index("factory", ids, x, factory=factory, nprobe=8)
    truth = _oracle(x, ids, q, 10)
    assert recall(index.search(q, 10).ids, truth) >= 0.9
    index.remove(ids[:2900])
    found = index.search(q, 10).ids
    assert (found >= 0).all() and not np.isin(found, ids[:2900]).any()


@pytest.mark.parametrize("kind", KINDS)
def test_removing_90_percent_keeps_k_live_hits(kind: str, dense_data) -> None:
    ids, x, q = dense_data
    index = _index(kind, ids, x)
    rng = np.random.default_rng(0)
    gone = rng.choice(ids, size=2700, replace=False)
    for chunk in np.array_split(gone, 9):
        index.remove(chunk)
    index.remove(gone[:5])  # removing twice is a no-op
    assert len(index) == 300
    found = index.search(q, 10).ids
    assert (found >= 0).all() and not np.isin(found, gone).any()
    live = ~np.isin(ids, gone)
    assert recall(found, _oracle(x[live], ids[live], q, 10)) >= min(FLOOR[kind], 0.9)


@pytest.mark.parametrize("kind", KINDS)
def test_filtered_search_returns_only_allowed(kind: str, dense_data) -> None:
    ids, x, q = dense_data
    index = _index(kind, ids, x)
    allowed = ids[::37]
    _scores, found = index.search(q, 10, allowed_ids=allowed)
    assert np.isin(found, allowed).all()
    mask = np.isin(ids, allowed)
    if kind == "flat":
        np.testing.assert_array_equal(found, _oracle(x[mask], ids[mask], q, 10))
    few = index.search(q, 10, allowed_ids=np.array([ids[3], ids[4], 999_999_999]))
    assert (np.sort(few.ids[:, :2], axis=1) == np.sort(ids[3:5])).all() and (few.ids[:, 2:] == -1).all()
    assert np.isneginf(few.scores[:, 2:]).all()


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf_flat"])
def test_upsert_replaces_vector(kind: str, dense_data) -> None:
    ids, x, q = dense_data
    index = _index(kind, ids, x)
    index.add(ids[:1], q[:1])
    assert len(index) == len(ids)
    scores, found = index.search(q[:1], 3)
    assert found[0, 0] == ids[0] and scores[0, 0] == pytest.approx(float(q[0] @ q[0]), rel=1e-4)
    assert (found[0] == ids[0]).sum() == 1


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_identical(kind: str, dense_data, tmp_path: Path) -> None:
    ids, x, q = dense_data
    index = _index(kind, ids, x)
    index.remove(ids[:100])
    before = index.search(q, 10, allowed_ids=ids[::3])
    plain = index.search(q, 10)
    index.save(tmp_path, seq=42)
    again = DenseIndex.load(tmp_path)
    assert again.seq == 42 and len(again) == len(index) and again.kind == index.kind
    for want, got in ((before, again.search(q, 10, allowed_ids=ids[::3])), (plain, again.search(q, 10))):
        np.testing.assert_array_equal(want.ids, got.ids)
        np.testing.assert_array_equal(want.scores, got.scores)


def test_auto_policy_moves_from_flat_to_ivf(dense_data) -> None:
    ids, x, q = dense_data
    index = DenseIndex(DIM, DenseConfig(kind="auto", auto_flat_max=2000, metric="ip"))
    index.add(ids[:1500], x[:1500])
    assert index.kind == "flat"
    index.add(ids[1500:], x[1500:])
    assert index.kind == "ivf_flat" and len(index) == len(ids)
    assert recall(index.search(q, 10).ids, _oracle(x, ids, q, 10)) >= 0.95


def test_converted_builds_another_kind_over_the_same_live_vectors(dense_data) -> None:
    ids, x, q = dense_data
    flat = DenseIndex(DIM, DenseConfig(kind="flat", metric="cosine"))
    flat.add(ids, x)
    flat.remove(ids[:100])
    ivf = flat.converted(DenseConfig(kind="ivf_flat", metric="cosine", nprobe=10_000))
    assert (ivf.kind, len(ivf), flat.kind, len(flat)) == ("ivf_flat", len(ids) - 100, "flat", len(ids) - 100)
    want, got = flat.search(q, 10), ivf.search(q, 10)
    np.testing.assert_array_equal(want.ids, got.ids)  # every list probed: the exact answer, same ids
    np.testing.assert_allclose(want.scores, got.scores, rtol=1e-5)
    assert DenseIndex(DIM).converted(DenseConfig(kind="ivf_flat")).kind is None  # empty stays empty


def test_converted_reads_a_flat_index_in_place_and_gives_the_same_answers(dense_data) -> None:
    ids, x, q = dense_data
    flat = DenseIndex(DIM, DenseConfig(kind="flat", metric="cosine"))
    flat.add(ids, x)  # what a bulk load leaves: live rows only, in slot order
    _, keep = flat._slots.compacted()
    stored = flat._stored(keep)
    assert stored is not None and not stored.flags.owndata  # the flat storage itself, not a copy
    np.testing.assert_allclose(stored, flat.faiss_index.reconstruct_batch(keep), rtol=0, atol=0)
    ivf = flat.converted(DenseConfig(kind="ivf_flat", metric="cosine", nprobe=10_000))
    want, got = flat.search(q, 10), ivf.search(q, 10)
    np.testing.assert_array_equal(want.ids, got.ids)
    np.testing.assert_allclose(want.scores, got.scores, rtol=1e-5)
    ivf.add(ids[:5], x[:5] * 2.0)  # the new index owns its vectors: upserts work after the old one is gone
    del flat
    assert len(ivf) == len(ids) and ivf.search(x[:1], 1).ids[0, 0] == ids[0]


def test_cosine_normalises(dense_data) -> None:
    ids, x, q = dense_data
    index = DenseIndex(DIM, DenseConfig(kind="flat", metric="cosine"))
    index.add(ids, x * 3.0)
    scores, found = index.search(q * 7.0, 1)
    assert np.allclose(scores[:, 0], np.max(q @ x.T, axis=1), atol=1e-5)
    assert (found[:, 0] == _oracle(x, ids, q, 1)[:, 0]).all()


def test_exact_sibling_matches_numpy(dense_data, tmp_path: Path) -> None:
    ids, x, q = dense_data
    exact = ExactDenseIndex(DIM, "ip")
    exact.add(ids, x)
    np.testing.assert_array_equal(exact.search(q, 10).ids, _oracle(x, ids, q, 10))
    exact.remove(ids[:10])
    exact.save(tmp_path, seq=3)
    again = ExactDenseIndex.load(tmp_path)
    np.testing.assert_array_equal(again.search(q, 10).ids, exact.search(q, 10).ids)
    assert again.seq == 3 and len(again) == len(ids) - 10


def test_empty_index_and_k_larger_than_collection(dense_data) -> None:
    ids, x, q = dense_data
    index = DenseIndex(DIM, DenseConfig(metric="ip"))
    assert (index.search(q, 4).ids == -1).all()
    index.add(ids[:3], x[:3])
    scores, found = index.search(q[:2], 5)
    assert (found[:, :3] >= 0).all() and (found[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()


def test_invalid_inputs_raise_typed_errors(dense_data) -> None:
    ids, x, q = dense_data
    index = DenseIndex(DIM, DenseConfig(metric="ip"))
    with pytest.raises(InvalidVectorsError) as err:
        index.add(ids[:2], np.zeros((2, DIM + 1), np.float32))
    assert err.value.expected == f"float32 (n, {DIM})" and "(2, 33)" in err.value.received
    with pytest.raises(InvalidIdsError):
        index.add(ids[:3], x[:2])
    with pytest.raises(InvalidIdsError):
        index.add([1, 1], x[:2])
    with pytest.raises(InvalidIdsError):
        index.add([-5, 1], x[:2])
    with pytest.raises(InvalidVectorsError):
        index.add([1, 2], np.full((2, DIM), np.nan, np.float32))
    with pytest.raises(InvalidQueryError):
        index.search(q, 0)
    with pytest.raises(InvalidQueryError):
        index.search(q[0], 3)


@pytest.mark.gpu
def test_gpu_replica_matches_cpu(dense_data) -> None:
    """On a GPU machine the default device puts a replica there: faiss GPU, or the torch fp16 matmul replica
    when the installed faiss has no GPU support; either answers like the CPU index."""
    ids, x, q = dense_data
    gpu = _index("flat", ids, x)
    cpu = _index("flat", ids, x, device="cpu")
    np.testing.assert_array_equal(gpu.search(q, 10).ids, cpu.search(q, 10).ids)
    assert faiss.get_num_gpus() > 0


_ops = st.lists(
    st.tuples(st.sampled_from(["add", "remove"]), st.lists(st.integers(0, 30), min_size=1, max_size=8, unique=True)),
    min_size=1,
    max_size=12,
)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_ops, seed=st.integers(0, 1000))
def test_property_upsert_remove_matches_model(kind: str, ops, seed: int) -> None:
    """Any sequence of upserts and removals leaves exactly the model's live ids, with their latest vectors."""
    rng = np.random.default_rng(seed)
    index, model = DenseIndex(8, DenseConfig(kind=kind, compact_ratio=0.5, metric="ip")), {}
    for op, keys in ops:
        if op == "add":
            vectors = rng.standard_normal((len(keys), 8)).astype(np.float32)
            index.add(keys, vectors)
            model.update(zip(keys, vectors, strict=True))
        else:
            index.remove(keys)
            for key in keys:
                model.pop(key, None)
    assert len(index) == len(model)
    if not model:
        return
    scores, found = index.search(np.ones((1, 8), np.float32), 40)
    assert sorted(found[found >= 0].tolist()) == sorted(model)
    want = {key: float(v.sum()) for key, v in model.items()}
    for key, score in zip(found[0], scores[0], strict=True):
        if key >= 0:
            assert score == pytest.approx(want[int(key)], abs=1e-4)
