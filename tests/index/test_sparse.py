"""SparseIndex against the brute-force dot product (ExactSparseIndex and a dict loop)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index import ExactSparseIndex, InvalidVectorsError, SparseIndex


def _dict_oracle(docs, ids, q, k):
    scored = [(sum(w * d.get(t, 0.0) for t, w in q.items()), int(i)) for d, i in zip(docs, ids, strict=True)]
    hits = sorted((s, i) for s, i in scored if s != 0)
    hits.sort(key=lambda p: (-p[0], p[1]))
    return [i for _, i in hits[:k]]


def _both(ids, docs):
    a, b = SparseIndex(), ExactSparseIndex()
    a.add(ids, docs)
    b.add(ids, docs)
    return a, b


def _same(a, b, queries, k, allowed=None):
    ra, rb = a.search(queries, k, allowed_ids=allowed), b.search(queries, k, allowed_ids=allowed)
    np.testing.assert_array_equal(ra.ids, rb.ids)
    np.testing.assert_allclose(ra.scores, rb.scores, rtol=1e-6)
    return ra


def test_identical_to_brute_force(sparse_data) -> None:
    ids, docs, queries = sparse_data
    index, exact = _both(ids, docs)
    res = _same(index, exact, queries, 10)
    for row, q in zip(res.ids, queries, strict=True):
        want = _dict_oracle(docs, ids, q, 10)
        assert row[: len(want)].tolist() == want and (row[len(want) :] == -1).all()


def test_removal_filter_and_upsert(sparse_data) -> None:
    ids, docs, queries = sparse_data
    index, exact = _both(ids, docs)
    gone = ids[::10][:140]
    for x in (index, exact):
        x.remove(gone)
        x.add(ids[1:2], [{1: 1.0, 2: 2.0}])
    res = _same(index, exact, queries, 10)
    assert not np.isin(res.ids, gone).any()
    allowed = ids[::7]
    res = _same(index, exact, queries, 10, allowed)
    assert np.isin(res.ids[res.ids >= 0], allowed).all()
    _same(index, exact, [{1: 1.0}], 3)


def test_remove_90_percent(sparse_data) -> None:
    ids, docs, queries = sparse_data
    index, exact = _both(ids, docs)
    gone = np.random.default_rng(0).choice(ids, size=1350, replace=False)
    index.remove(gone)
    exact.remove(gone)
    assert len(index) == 150
    res = _same(index, exact, queries, 10)
    assert not np.isin(res.ids, gone).any()


def test_save_load_identical(sparse_data, tmp_path: Path) -> None:
    ids, docs, queries = sparse_data
    index = SparseIndex()
    index.add(ids, docs)
    index.remove(ids[:10])
    index.add([10**12], [{5: 0.5, 99_999: 1.0}])
    index.save(tmp_path, seq=4)
    again = SparseIndex.load(tmp_path)
    assert again.seq == 4 and len(again) == len(index)
    for allowed in (None, ids[::3]):
        a, b = index.search(queries, 10, allowed), again.search(queries, 10, allowed)
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_array_equal(a.scores, b.scores)
    assert again.search([{99_999: 2.0}], 2).ids[0].tolist() == [10**12, -1]


def test_invalid_items() -> None:
    index = SparseIndex()
    with pytest.raises(InvalidVectorsError):
        index.add([1], [{-1: 1.0}])
    with pytest.raises(InvalidVectorsError):
        index.add([1], [{1: float("nan")}])
    with pytest.raises(InvalidVectorsError):
        index.add([1], [[(1, 1.0)]])


_ops = st.lists(
    st.tuples(st.sampled_from(["add", "remove"]), st.lists(st.integers(0, 30), min_size=1, max_size=8, unique=True)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(ops=_ops, seed=st.integers(0, 1000))
def test_property_upsert_remove_matches_model(ops, seed: int) -> None:
    """After any sequence of upserts and removals, the index answers exactly like a dict model."""
    rng = np.random.default_rng(seed)
    index, model = SparseIndex(compact_ratio=0.3), {}
    for op, keys in ops:
        if op == "add":
            items = [{int(t): float(rng.uniform(0.1, 1.0)) for t in rng.choice(20, 3, replace=False)} for _ in keys]
            index.add(keys, items)
            model.update(zip(keys, items, strict=True))
        else:
            index.remove(keys)
            for key in keys:
                model.pop(key, None)
    assert len(index) == len(model)
    query = {t: 1.0 for t in range(20)}
    found = index.search([query], 40).ids[0]
    assert sorted(found[found >= 0].tolist()) == sorted(model)
    want = _dict_oracle(list(model.values()), list(model.keys()), query, 40)
    assert found[: len(want)].tolist() == want
