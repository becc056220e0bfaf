"""Token storage of multi-vector documents (index/token_store.py): extents, gather, compaction, state round trip."""

from __future__ import annotations

import numpy as np

from index.token_store import TokenStore


def _doc(m: int, start: float) -> np.ndarray:
    return (start + np.arange(m * 2, dtype=np.float32)).reshape(m, 2)


def test_append_and_gather_keep_each_documents_rows() -> None:
    store = TokenStore(2)
    docs = [_doc(2, 0.0), _doc(1, 100.0), _doc(3, 200.0)]
    store.append(docs)
    assert (store.n_tokens, store.n_slots, store.tokens.dtype) == (6, 3, np.float16)
    assert store.lengths(np.array([2, 0])).tolist() == [3, 2]
    rows, offsets = store.gather(np.array([2, 0], np.int64))
    assert offsets.tolist() == [0, 3, 5] and rows.tolist() == np.concatenate([docs[2], docs[0]]).tolist()
    assert store.nbytes() == 6 * 2 * 2 + 3 * 8 * 2


def test_growth_beyond_the_first_capacity() -> None:
    store = TokenStore(2)
    for i in range(5):
        store.append([_doc(300, float(i))])
    rows, _ = store.gather(np.array([4], np.int64))
    assert store.n_tokens == 1500 and rows.tolist() == _doc(300, 4.0).astype(np.float16).tolist()


def test_compaction_drops_rows_and_renumbers_the_kept_slots() -> None:
    store = TokenStore(2)
    docs = [_doc(2, 0.0), _doc(1, 100.0), _doc(3, 200.0)]
    store.append(docs)
    store.compact(np.array([0, 2], np.int64))
    assert (store.n_tokens, store.n_slots) == (5, 2) and store.lengths(np.arange(2)).tolist() == [2, 3]
    slots, offsets = store.occupied()
    assert slots.tolist() == [0, 1] and offsets.tolist() == [0, 2, 5]
    assert store.gather(np.array([1], np.int64))[0].tolist() == docs[2].tolist()
    store.append([_doc(1, 300.0)])  # appends after a compaction take the next slot and row
    assert store.gather(np.array([2], np.int64))[0].tolist() == _doc(1, 300.0).tolist()
    state = store.state()
    again = TokenStore.from_state(2, state["tokens"], state["start"], state["length"])  # type: ignore[arg-type]
    both = np.array([0, 1, 2], np.int64)
    assert again.gather(both)[0].tolist() == store.gather(both)[0].tolist()
    assert (again.n_tokens, again.n_slots) == (6, 3)
