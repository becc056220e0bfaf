"""Every index family speaks the verbs of `index.Index`; something lacking one does not pass for an index. Every
family, loaded from a snapshot, renames its ids (`remap_ids`) and answers as before under the new ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index import (
    BM25Index,
    DenseConfig,
    DenseIndex,
    ExactBM25Index,
    ExactDenseIndex,
    ExactMultiVectorIndex,
    ExactSparseIndex,
    Index,
    InvalidIdsError,
    MultiVectorConfig,
    MultiVectorIndex,
    SparseIndex,
)


def test_every_family_is_an_index() -> None:
    for index in (DenseIndex(8), MultiVectorIndex(8), SparseIndex(), BM25Index()):
        assert isinstance(index, Index), type(index).__name__
        assert index.seq is None and len(index) == 0


def test_an_object_without_search_is_not_an_index() -> None:
    class NoSearch:
        seq = None

        def __len__(self) -> int:
            return 0

        def add(self, ids: object, items: object) -> None: ...

        def remove(self, ids: object) -> None: ...

        def save(self, directory: object, seq: object = None) -> None: ...

    assert not isinstance(NoSearch(), Index)


def _families() -> list[tuple[Any, Any, Any]]:
    """(index, items (12,), queries) for every family, the trained kinds included."""
    rng = np.random.default_rng(5)
    dense = rng.standard_normal((12, 8)).astype(np.float32)
    tokens = [rng.standard_normal((int(rng.integers(2, 6)), 8)).astype(np.float32) for _ in range(12)]
    sparse = [{int(t): float(rng.random()) for t in rng.choice(40, 5, replace=False)} for _ in range(12)]
    texts = [" ".join(rng.choice(["river", "road", "bridge", "tower", "field", "lake"], 6)) for _ in range(12)]
    ivf = DenseConfig(kind="ivf_flat", nlist=3, nprobe=1)
    two_stage = MultiVectorConfig(kind="two_stage", nlist=2, pq_m=2, token_k=8)
    return [
        (DenseIndex(8, ivf), dense, dense[:3]),
        (DenseIndex(8, DenseConfig(kind="hnsw")), dense, dense[:3]),
        (MultiVectorIndex(8, two_stage), tokens, tokens[:3]),
        (SparseIndex(), sparse, sparse[:3]),
        (BM25Index(), texts, ["river bridge", "lake", "tower field"]),
        (ExactDenseIndex(8), dense, dense[:3]),
        (ExactMultiVectorIndex(8), tokens, tokens[:3]),
        (ExactSparseIndex(), sparse, sparse[:3]),
        (ExactBM25Index(), texts, ["river bridge", "lake", "tower field"]),
    ]


@pytest.mark.parametrize("case", range(9))
def test_remap_ids_renames_a_loaded_snapshot_with_equal_scores(case: int, tmp_path: Path) -> None:
    index, items, queries = _families()[case]
    ids = np.arange(12, dtype=np.int64) * 3 + 5
    index.add(ids, items)
    index.remove(ids[4:5])  # a tombstone travels too
    index.save(tmp_path, seq=9)
    before = index.search(queries, 5)
    moved = type(index).load(tmp_path)
    new = ids * 7 + 1000 + np.arange(12)  # another store numbers the same items anew, in the same order (ties
    # are broken by id: an import keeps the order)
    moved.remap_ids(ids, new)
    after = moved.search(queries, 5)
    rename = dict(zip(ids.tolist(), new.tolist(), strict=True)) | {-1: -1}
    assert after.ids.tolist() == [[rename[i] for i in row] for row in before.ids.tolist()]
    np.testing.assert_array_equal(after.scores, before.scores)  # the same trained structures: equal scores
    assert len(moved) == 11 and moved.search(queries, 5, allowed_ids=new[4:5]).ids.max() == -1  # removed stays so
    with pytest.raises(InvalidIdsError):  # a live id with no new name: nothing changes
        moved.remap_ids(new[:5], ids[:5])
    np.testing.assert_array_equal(moved.search(queries, 5).ids, after.ids)
