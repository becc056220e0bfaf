"""Replay: an index snapshot taken at seq S plus (adds after S, removals after S) equals a fresh build."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.store import Store
from tests.retrieval.store._docs import doc_id, make_doc

# an op: ("put", number, version) or ("del", number, 0); numbers from a small pool so upserts collide
_OPS = st.lists(
    st.tuples(st.sampled_from(["put", "put", "del"]), st.integers(0, 5), st.integers(0, 3)), min_size=1, max_size=8
)
_NAMES = itertools.count()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One store for every hypothesis example (each example uses a fresh collection)."""
    with Store.open(tmp_path_factory.mktemp("replay") / "s.db") as store:
        yield store


def _apply(store: Store, name: str, op: tuple[str, int, int]) -> None:
    kind, number, version = op
    if kind == "put":
        store.write(name, [make_doc(number, version)])
    else:
        store.write(name, deletes=[doc_id(number)])


def _build(store: Store, name: str = "c", upto: int | None = None) -> dict[int, str]:
    """A toy index: chunk_id -> key, built from iter_chunks."""
    return {r.chunk_id: r.key for batch in store.iter_chunks(name, upto_seq=upto, batch=4) for r in batch}


@settings(max_examples=15, deadline=None)
@given(before=_OPS, after=_OPS)
def test_snapshot_plus_replay_equals_fresh_build(
    shared: Store, before: list[tuple[str, int, int]], after: list[tuple[str, int, int]]
) -> None:
    name = f"c{next(_NAMES)}"
    shared.create_collection(name, {})
    for op in before:
        _apply(shared, name, op)
    snap_seq = shared.last_seq()
    index = _build(shared, name, upto=snap_seq)
    for op in after:
        _apply(shared, name, op)
    for chunk_id in shared.removed_after(name, snap_seq).tolist():
        index.pop(chunk_id, None)  # an id added and removed after S is not in the snapshot: ignored
    for batch in shared.iter_chunks(name, after_seq=snap_seq, batch=3):
        for row in batch:
            assert row.chunk_id not in index and row.seq > snap_seq
            index[row.chunk_id] = row.key
    assert index == _build(shared, name)
    live = {doc_id(n) for n in _reference(before + after)}
    assert {key.split("#")[0] for key in index.values()} == live


def _reference(ops: list[tuple[str, int, int]]) -> dict[int, int]:
    live: dict[int, int] = {}
    for kind, number, version in ops:
        if kind == "put":
            live[number] = version
        else:
            live.pop(number, None)
    return live


def test_snapshot_taken_while_writes_continue(tmp_path: Path) -> None:
    """Rows written during a build (seq > upto) are left to the replay; nothing is lost or doubled."""
    with Store.open(tmp_path / "s.db") as store:
        store.create_collection("c", {})
        for i in range(6):
            store.write("c", [make_doc(i)])
        snap_seq = store.last_seq()
        index: dict[int, str] = {}
        for k, batch in enumerate(store.iter_chunks("c", upto_seq=snap_seq, batch=2)):
            if k == 1:  # writes land mid-scan
                store.write("c", [make_doc(0, 1), make_doc(10)], deletes=[doc_id(5)])
            index.update({r.chunk_id: r.key for r in batch})
        for chunk_id in store.removed_after("c", snap_seq).tolist():
            index.pop(chunk_id, None)
        index.update({r.chunk_id: r.key for b in store.iter_chunks("c", after_seq=snap_seq) for r in b})
        assert index == _build(store)
