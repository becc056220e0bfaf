"""FAISS construction (index/faiss_build.py): the auto policy, list counts, id regimes and training by hand."""

from __future__ import annotations

import numpy as np
import pytest

from index.config import DenseConfig
from index.errors import IndexConfigError
from index.faiss_build import build_index, default_nprobe, faiss, is_positional, resolve_kind


def test_auto_kind_by_size() -> None:
    config = DenseConfig(auto_flat_max=100, auto_ivf_flat_max=1000)
    assert [resolve_kind(config, n) for n in (0, 99, 100, 999, 1000)] == [
        "flat",
        "flat",
        "ivf_flat",
        "ivf_flat",
        "ivf_sq8",
    ]
    assert resolve_kind(DenseConfig(kind="hnsw"), 10**9) == "hnsw"


def test_nprobe_default_and_cap() -> None:
    assert default_nprobe(DenseConfig(), 1000) == 31 and default_nprobe(DenseConfig(), 100) == 8
    assert default_nprobe(DenseConfig(), 4) == 4 and default_nprobe(DenseConfig(nprobe=50), 20) == 20


def _data(n: int, dim: int = 8) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)  # unit rows: each is its own best inner product


def test_flat_and_hnsw_id_regimes() -> None:
    flat = build_index(DenseConfig(kind="flat"), 8, _data(10))
    assert (flat.kind, flat.positional, flat.trained_on) == ("flat", False, 0)
    assert isinstance(flat.index, faiss.IndexIDMap2)
    hnsw = build_index(DenseConfig(kind="hnsw", hnsw_m=8, ef_search=20), 8, _data(10))
    assert hnsw.positional and is_positional(hnsw.index) and hnsw.index.hnsw.efSearch == 20


def test_ivf_lists_follow_the_points_per_list_rule() -> None:
    x = _data(400)
    built = build_index(DenseConfig(kind="ivf_flat"), 8, x)
    ivf = faiss.extract_index_ivf(built.index)
    # sqrt(400) = 20 lists wanted, but 400 // 39 = 10 lists at most
    assert (built.kind, built.trained_on, ivf.nlist, ivf.nprobe) == ("ivf_flat", 400, 10, 8)
    assert built.index.is_trained and not built.positional
    built.index.add_with_ids(x, np.arange(400, dtype=np.int64))
    _, ids = built.index.search(x[:5], 1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]  # each vector finds itself (its own list is probed)
    sq = build_index(DenseConfig(kind="ivf_sq8", nlist=4, nprobe=2), 8, x)
    assert faiss.extract_index_ivf(sq.index).nlist == 4 and faiss.extract_index_ivf(sq.index).nprobe == 2


def test_pq_and_factory_settings_are_checked() -> None:
    with pytest.raises(IndexConfigError) as err:
        build_index(DenseConfig(kind="ivf_pq", pq_m=3), 8, _data(100))
    assert (err.value.param, err.value.expected, err.value.received) == ("pq_m", "a divisor of dim 8", "3")
    pq = build_index(DenseConfig(kind="ivf_pq"), 8, _data(100))
    assert faiss.downcast_index(pq.index).pq.M == 2  # largest divisor of 8 up to 8 // 4
    with pytest.raises(IndexConfigError, match=r"a valid FAISS index_factory string"):
        build_index(DenseConfig(kind="factory", factory="NoSuchIndex"), 8, _data(10))
    wrapped = build_index(DenseConfig(kind="factory", factory="Flat"), 8, _data(10))
    assert isinstance(wrapped.index, faiss.IndexIDMap2) and not wrapped.positional
