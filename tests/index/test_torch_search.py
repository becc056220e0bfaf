"""Torch exact search (index/torch_search.py) and its use as DenseIndex's replica, against flat FAISS."""

from __future__ import annotations

from typing import Any

import faiss as _faiss
import numpy as np
import pytest
import torch

import index.device as device_module
from index import DenseConfig, DenseIndex, InvalidQueryError
from index.torch_search import TorchFlat

faiss: Any = _faiss


def _flat(x: np.ndarray, ids: np.ndarray) -> Any:
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(x.shape[1]))
    index.add_with_ids(x, ids)
    return index


def test_torch_flat_on_cpu_equals_faiss_flat(dense_data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, x, q = dense_data
    oracle = _flat(x, ids)
    replica = TorchFlat.from_faiss(oracle, "cpu")
    assert replica is not None and replica.ntotal == len(ids) and replica.d == x.shape[1]
    want_s, want_i = oracle.search(q, 10)
    got_s, got_i = replica.search(q, 10)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_s, want_s, rtol=1e-5, atol=1e-5)


def test_torch_flat_pads_missing_hits_and_refuses_filters() -> None:
    x = np.eye(3, 4, dtype=np.float32)
    replica = TorchFlat(x, np.array([7, 8, 9]), "cpu")
    scores, labels = replica.search(np.array([[0, 1, 0, 0]], np.float32), 5)
    assert labels[0, 0] == 8 and set(labels[0, 1:3].tolist()) == {7, 9} and scores[0, :3].tolist() == [1, 0, 0]
    assert labels[0, 3:].tolist() == [-1, -1] and np.isneginf(scores[0, 3:]).all()
    assert TorchFlat.from_faiss(faiss.IndexHNSWFlat(4, 8), "cpu") is None
    with pytest.raises(InvalidQueryError):
        replica.search(x, 1, params=faiss.SearchParameters())


def test_dense_index_searches_through_the_torch_replica(
    dense_data: tuple[np.ndarray, np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replica choice of a CUDA machine, run on the CPU: results equal the CPU-only index throughout."""
    ids, x, q = dense_data
    monkeypatch.setattr(device_module, "torch_device", lambda: "cpu")
    calls: list[int] = []
    original = TorchFlat.search

    def counted(self: TorchFlat, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TorchFlat, "search", counted)
    fast = DenseIndex(x.shape[1], DenseConfig(kind="flat", metric="cosine"))
    plain = DenseIndex(x.shape[1], DenseConfig(kind="flat", metric="cosine", device="cpu"))
    for index in (fast, plain):
        index.add(ids[:2000], x[:2000])
    _same(fast, plain, q)
    for index in (fast, plain):  # mutations drop the replica; the next search rebuilds it
        index.remove(ids[:500])
        index.add(ids[2000:], x[2000:])
    _same(fast, plain, q)
    np.testing.assert_array_equal(fast.search(q, 5, allowed_ids=ids[::7]).ids, plain.search(q, 5, ids[::7]).ids)
    assert len(calls) == 2  # unfiltered searches only


def _same(a: DenseIndex, b: DenseIndex, q: np.ndarray) -> None:
    ra, rb = a.search(q, 10), b.search(q, 10)
    np.testing.assert_array_equal(ra.ids, rb.ids)
    np.testing.assert_allclose(ra.scores, rb.scores, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
def test_torch_flat_on_cuda_matches_faiss_flat(dense_data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, x, q = dense_data
    oracle = _flat(x, ids)
    replica = TorchFlat.from_faiss(oracle, "cuda")
    assert replica is not None and replica.dtype == torch.float16
    want_s, want_i = oracle.search(q, 10)
    got_s, got_i = replica.search(q, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got_i, want_i, strict=True)])
    assert overlap >= 0.98  # fp16 scores may swap near-ties
    np.testing.assert_allclose(got_s, want_s, atol=2e-2)
