"""Fusion against a naive dictionary-and-loop reference, plus the validation of `fusion.k` / `fusion.weights`."""

from __future__ import annotations

import doctest
import math
import statistics

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.errors import InvalidRequestError
from retrieval.search import fusion
from retrieval.search.fusion import FusionConfig, RankedList, fuse


def ranked(ids: list[int], scores: list[float]) -> RankedList:
    return RankedList(np.array(ids, dtype=np.int64), np.array(scores, dtype=np.float32))


def naive(lists: dict[str, RankedList], method: str, k: int = 60, weights: dict[str, float] | None = None) -> dict:
    """id -> fused score, written as plainly as possible (first occurrence of an id in a list wins)."""
    out: dict[int, float] = {}
    for name, rl in lists.items():
        seen: dict[int, float] = {}
        for i, s in zip(rl.ids.tolist(), rl.scores.tolist(), strict=True):
            if i != -1 and i not in seen:
                seen[i] = float(s)
        if not seen:
            continue
        w = (weights or {}).get(name, 1.0 / len(lists) if method == "weighted" else 1.0)
        vals = list(seen.values())
        for rank, (i, s) in enumerate(seen.items(), start=1):
            if method == "rrf":
                term = 1.0 / (k + rank)
            elif method == "weighted":
                lo, hi = min(vals), max(vals)
                term = 1.0 if hi == lo else (s - lo) / (hi - lo)
            else:
                sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                term = 0.5 if sd == 0 else (s - (statistics.mean(vals) - 3 * sd)) / (6 * sd)
            out[i] = out.get(i, 0.0) + w * term
    return out


@st.composite
def ranked_lists(draw: st.DrawFn) -> dict[str, RankedList]:
    names = draw(st.lists(st.sampled_from(["dense", "bm25", "sparse", "multivector"]), unique=True, max_size=4))
    lists = {}
    for name in names:
        ids = draw(st.lists(st.integers(0, 30), max_size=12))
        scores = sorted(draw(st.lists(st.integers(-50, 50), min_size=len(ids), max_size=len(ids))), reverse=True)
        pad = draw(st.integers(0, 3))
        lists[name] = ranked(ids + [-1] * pad, [s / 4 for s in scores] + [-math.inf] * pad)
    return lists


def check_against_naive(got: RankedList, expected: dict[int, float]) -> None:
    assert got.ids.dtype == np.int64 and got.scores.dtype == np.float32
    assert sorted(got.ids.tolist()) == sorted(expected)
    for i, s in zip(got.ids.tolist(), got.scores.tolist(), strict=True):
        assert s == pytest.approx(expected[i], rel=1e-5, abs=1e-6)
    pairs = list(zip((-got.scores).tolist(), got.ids.tolist(), strict=True))
    assert pairs == sorted(pairs)  # score descending, then smaller id first


@settings(max_examples=150, deadline=None)
@given(lists=ranked_lists(), method=st.sampled_from(["rrf", "weighted", "dbsf"]), k=st.integers(1, 100))
def test_matches_naive_reference(lists: dict[str, RankedList], method: str, k: int) -> None:
    check_against_naive(fuse(lists, FusionConfig(method=method, k=k)), naive(lists, method, k))  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(lists=ranked_lists(), method=st.sampled_from(["rrf", "weighted", "dbsf"]), data=st.data())
def test_weights_multiply_each_list(lists: dict[str, RankedList], method: str, data: st.DataObject) -> None:
    named = data.draw(st.lists(st.sampled_from(sorted(lists)), unique=True)) if lists else []
    weights = {n: data.draw(st.sampled_from([0.0, 0.25, 1.0, 3.0])) for n in named}
    got = fuse(lists, FusionConfig(method=method, weights=weights))  # type: ignore[arg-type]
    check_against_naive(got, naive(lists, method, 60, weights))


def test_rrf_by_hand() -> None:
    lists = {"dense": ranked([7, 3], [0.9, 0.1]), "bm25": ranked([3, 9, -1], [5.0, 4.0, -math.inf])}
    got = fuse(lists, FusionConfig(k=60))
    assert got.ids.tolist() == [3, 7, 9]
    assert got.scores.tolist() == pytest.approx([1 / 62 + 1 / 61, 1 / 61, 1 / 62])


def test_weighted_by_hand_and_equal_scores_normalise_to_one() -> None:
    lists = {"dense": ranked([1, 2, 3], [0.8, 0.6, 0.4]), "bm25": ranked([4, 5], [2.0, 2.0])}
    got = fuse(lists, FusionConfig(method="weighted", weights={"dense": 0.7, "bm25": 0.3}))
    assert got.ids.tolist() == [1, 2, 4, 5, 3]
    assert got.scores.tolist() == pytest.approx([0.7, 0.35, 0.3, 0.3, 0.0])


def test_weighted_default_is_equal_weights_summing_to_one() -> None:
    lists = {"a": ranked([1, 2], [1.0, 0.0]), "b": ranked([1, 2], [1.0, 0.0]), "c": ranked([2], [5.0])}
    got = fuse(lists, FusionConfig(method="weighted"))
    assert got.ids.tolist() == [1, 2]
    assert got.scores.tolist() == pytest.approx([2 / 3, 1 / 3])


def test_dbsf_by_hand() -> None:
    # scores 3, 2, 1: mean 2, sample sigma 1 -> (s - (2 - 3)) / 6; a single score -> 0.5
    got = fuse({"a": ranked([1, 2, 3], [3.0, 2.0, 1.0]), "b": ranked([3], [10.0])}, FusionConfig(method="dbsf"))
    assert got.ids.tolist() == [3, 1, 2]
    assert got.scores.tolist() == pytest.approx([2 / 6 + 0.5, 4 / 6, 3 / 6])


def test_dbsf_keeps_the_order_of_a_list_fused_with_itself() -> None:
    scores = [40.0, 10.0, 9.0, 8.5, 8.0, 7.9, 7.5, 7.0, 6.0, 5.0]  # 40 lies far beyond mean + 3 sigma
    rl = ranked(list(range(10)), scores)
    got = fuse({"a": rl, "b": rl}, FusionConfig(method="dbsf"))
    assert got.ids.tolist() == list(range(10))
    assert len(set(got.scores.tolist())) == 10


def test_duplicates_count_once_at_their_first_place() -> None:
    got = fuse({"a": ranked([5, 6, 5], [0.9, 0.8, 0.1])}, FusionConfig(k=1))
    assert got.ids.tolist() == [5, 6]
    assert got.scores.tolist() == pytest.approx([1 / 2, 1 / 3])


def test_empty_inputs() -> None:
    for lists in ({}, {"a": ranked([], [])}, {"a": ranked([-1, -1], [-math.inf, -math.inf])}):
        got = fuse(lists, FusionConfig())
        assert got.ids.shape == (0,) and got.ids.dtype == np.int64 and got.scores.dtype == np.float32


@pytest.mark.parametrize("k", [0, -5, True])
def test_k_must_be_at_least_one(k: int) -> None:
    with pytest.raises(InvalidRequestError) as err:
        fuse({"a": ranked([1], [1.0])}, FusionConfig(k=k))
    assert err.value.param == "fusion.k" and err.value.received == k


@pytest.mark.parametrize(
    "weights",
    [{"colbert": 1.0}, {"a": -0.1}, {"a": math.nan}, {"a": math.inf}, {"a": True}, {"a": "1"}],
)
def test_bad_weights(weights: dict) -> None:
    with pytest.raises(InvalidRequestError) as err:
        fuse({"a": ranked([1], [1.0]), "b": ranked([2], [1.0])}, FusionConfig(method="weighted", weights=weights))
    assert err.value.param == "fusion.weights"
    assert err.value.received == weights
    if "colbert" in weights:
        assert err.value.allowed == ["a", "b"] and "colbert" in err.value.message


def test_config_decodes_from_json_and_rejects_unknown_fields() -> None:
    cfg = msgspec.json.decode(b'{"method": "weighted", "weights": {"dense": 0.7, "bm25": 0.3}}', type=FusionConfig)
    assert cfg == FusionConfig(method="weighted", k=60, weights={"dense": 0.7, "bm25": 0.3})
    assert msgspec.json.decode(b"{}", type=FusionConfig) == FusionConfig(method="rrf", k=60, weights=None)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"method": "rrf", "kk": 3}', type=FusionConfig)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"method": "borda"}', type=FusionConfig)


def test_doctests() -> None:
    assert doctest.testmod(fusion).failed == 0
