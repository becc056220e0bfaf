"""Search planning (retrieval/search/planner.py): which families a mode searches, ranked lists, fusion of candidates."""

from __future__ import annotations

import numpy as np
import pytest

from index import SearchResult
from retrieval.errors import InvalidRequestError
from retrieval.search.fusion import FusionConfig, RankedList
from retrieval.search.planner import Candidates, family_query, fuse_candidates, modes_of, ranked
from retrieval.spec.collection import CollectionSpec


def _list(ids: list[int], scores: list[float]) -> RankedList:
    return RankedList(np.array(ids, np.int64), np.array(scores, np.float32))


def test_hybrid_searches_every_family_and_a_missing_mode_is_a_400() -> None:
    spec = CollectionSpec(name="c", dense_model="e5", sparse_model="m3")
    assert modes_of(spec, "hybrid") == ("dense", "sparse", "bm25")
    assert modes_of(spec, "sparse") == ("sparse",)
    with pytest.raises(InvalidRequestError, match=r"collection `c` has no multivector representation") as err:
        modes_of(spec, "multivector")
    assert (err.value.param, err.value.received) == ("mode", "multivector")
    assert err.value.allowed == ["dense", "sparse", "bm25", "hybrid"]
    assert modes_of(CollectionSpec(name="b"), "hybrid") == ("bm25",)


def test_family_query_is_a_batch_of_one_in_the_family_form() -> None:
    values = {"dense": np.arange(6, dtype=np.float64).reshape(3, 2), "sparse": [{1: 0.5}, {2: 1.0}, {}]}
    texts = ["a", "b", "c"]
    dense = family_query("dense", values, texts, 1)
    assert dense.dtype == np.float32 and dense.tolist() == [[2.0, 3.0]]
    assert family_query("bm25", values, texts, 2) == ["c"]
    assert family_query("sparse", values, texts, 0) == [{1: 0.5}]


def test_ranked_drops_missing_slots_of_the_row() -> None:
    result = SearchResult(
        np.array([[0.9, -np.inf, -np.inf], [0.4, 0.3, -np.inf]], np.float32),
        np.array([[7, -1, -1], [2, 5, -1]], np.int64),
    )
    first, second = ranked(result), ranked(result, 1)
    assert first.ids.tolist() == [7] and first.scores.tolist() == [np.float32(0.9)]
    assert second.ids.tolist() == [2, 5] and second.ids.dtype == np.int64 and second.scores.dtype == np.float32


def test_a_single_list_is_its_own_order_and_several_are_fused() -> None:
    only = _list([3, 1], [0.8, 0.2])
    single = fuse_candidates(Candidates(lists={"bm25": only}), FusionConfig())
    assert single.stage == "bm25" and single.order is only
    both = fuse_candidates(
        Candidates(lists={"dense": _list([1, 2], [0.9, 0.8]), "bm25": _list([2, 3], [5.0, 4.0])}),
        FusionConfig(method="rrf", k=60),
    )
    assert both.stage == "fusion" and both.order is not None
    # RRF by hand: 2 -> 1/62 + 1/61, 1 -> 1/61, 3 -> 1/62
    assert both.order.ids.tolist() == [2, 1, 3]
    assert both.order.scores.tolist() == pytest.approx([1 / 62 + 1 / 61, 1 / 61, 1 / 62], rel=1e-6)
