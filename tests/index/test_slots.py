"""Id <-> slot mapping (index/slots.py): tombstones, growth, compaction, result translation, top-k vs a naive sort."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.errors import InvalidIdsError
from index.slots import SlotMap, empty_result, finalize, topk_rows


def _ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_assign_replace_release_and_compact() -> None:
    slots = SlotMap()
    new, replaced = slots.assign(_ids(10, 20, 30))
    assert new.tolist() == [0, 1, 2] and replaced.tolist() == []
    new, replaced = slots.assign(_ids(20, 40))  # 20 is an upsert: old slot 1 dies
    assert new.tolist() == [3, 4] and replaced.tolist() == [1]
    assert slots.release(_ids(30, 999)).tolist() == [2]  # unknown ids are ignored
    assert slots.slot_ids.tolist() == [10, -1, -1, 20, 40]
    assert (len(slots), slots.n_slots, slots.n_dead) == (3, 5, 2)
    assert slots.live_slots().tolist() == [0, 3, 4] and slots.live_mask().tolist() == [1, 0, 0, 1, 1]
    assert slots.slots_of(_ids(40, 30, 10)).tolist() == [4, 0]
    assert slots.to_ext(np.array([[3, -1], [0, 1]])).tolist() == [[20, -1], [10, -1]]
    compact, old = slots.compacted()
    assert old.tolist() == [0, 3, 4] and compact.slot_ids.tolist() == [10, 20, 40] and compact.n_dead == 0
    assert compact.slots_of(_ids(40)).tolist() == [2]


def test_growth_keeps_every_mapping() -> None:
    slots = SlotMap()
    for start in range(0, 100, 7):
        slots.assign(np.arange(start, min(start + 7, 100), dtype=np.int64))
    assert slots.slot_ids.tolist() == list(range(100)) and len(slots) == 100
    reopened = SlotMap(slots.slot_ids)
    assert reopened.slots_of(_ids(99, 0)).tolist() == [99, 0]


def test_finalize_and_empty_result_mark_gaps() -> None:
    slots = SlotMap(_ids(7, -1, 9))
    out = finalize(np.array([[0.9, 0.5, 0.1]]), np.array([[2, 1, -1]]), slots)
    assert out.ids.tolist() == [[9, -1, -1]] and out.scores.tolist() == [[np.float32(0.9), -np.inf, -np.inf]]
    assert out.scores.dtype == np.float32
    empty = empty_result(2, 3)
    assert empty.ids.tolist() == [[-1] * 3] * 2 and np.isneginf(empty.scores).all()


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(0, 12), st.integers(1, 15), st.data())
def test_topk_rows_equals_a_sort_by_score(n: int, m: int, k: int, data: st.DataObject) -> None:
    pool = st.sampled_from([0.0, 1.0, 2.5, -1.0, float("-inf")])
    scores = np.array([[data.draw(pool) for _ in range(m)] for _ in range(n)], dtype=np.float32).reshape(n, m)
    top, labels = topk_rows(scores, k)
    assert top.shape == labels.shape == (n, k)
    for r in range(n):
        want = sorted((float(s) for s in scores[r] if np.isfinite(s)), reverse=True)[:k]
        got = [c for c in labels[r].tolist() if c >= 0]
        assert len(got) == len(want) == len(set(got)) and top[r, : len(want)].tolist() == want
        assert [float(scores[r, c]) for c in got] == want  # labels point at their scores
        assert all(a < b for a, b in pairwise(got) if scores[r, a] == scores[r, b])  # ties: lower first
        assert labels[r, len(want) :].tolist() == [-1] * (k - len(want)) and np.isneginf(top[r, len(want) :]).all()


def test_remapped_renames_live_ids_and_keeps_every_slot() -> None:
    slots = SlotMap()
    slots.assign(_ids(10, 20, 30))
    slots.release(_ids(20))
    moved = slots.remapped(_ids(30, 10, 99), _ids(3, 1, 9))  # 99 is not in the map: ignored
    assert moved.slot_ids.tolist() == [1, -1, 3] and moved.n_dead == 1
    assert moved.slots_of(_ids(3, 1, 10, 30)).tolist() == [2, 0]  # the old ids are gone
    assert slots.slot_ids.tolist() == [10, -1, 30]  # the original is untouched
    assert SlotMap().remapped(_ids(), _ids()).n_slots == 0


def test_remapped_refuses_a_live_id_without_a_new_name_or_a_bad_mapping() -> None:
    slots = SlotMap(_ids(10, 20))
    with pytest.raises(InvalidIdsError, match="1 live ids not among them"):
        slots.remapped(_ids(10, 30), _ids(1, 3))
    with pytest.raises(InvalidIdsError, match="2 live ids"):
        slots.remapped(_ids(), _ids())
    with pytest.raises(InvalidIdsError, match="unique"):
        slots.remapped(_ids(10, 20), _ids(1, 1))  # two ids may not take one name
    with pytest.raises(InvalidIdsError, match="2 ids"):
        slots.remapped(_ids(10, 20), _ids(1))
