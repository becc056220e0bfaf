"""Candidate lists deep enough for a number of documents (retrieval/search/candidates.py), over an exact index of
scripted scores: deeper rounds only for the queries still short, stopping at `need` documents or exhaustion."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from index import ExactDenseIndex, SearchResult
from retrieval.search.candidates import document_lists


class _Recorder:
    """An exact dense index that records every (rows, k) it is asked for."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.index = ExactDenseIndex(vectors.shape[1], "ip")
        self.index.add(np.arange(len(vectors)), vectors)
        self.asked: list[tuple[int, int]] = []

    def search(self, family: Any, queries: Any, k: int, allowed: Any) -> SearchResult:
        self.asked.append((len(queries), k))
        return self.index.search(queries, k, allowed)


class _Docs:
    def __init__(self, doc_of: dict[int, str]) -> None:
        self.doc_of, self.asked = doc_of, 0

    def chunk_documents(self, collection: str, chunk_ids: Any) -> dict[int, str]:
        self.asked += len(chunk_ids)
        return {int(i): self.doc_of[int(i)] for i in chunk_ids if int(i) in self.doc_of}


def _corpus() -> tuple[np.ndarray, dict[int, str]]:
    """Chunks 0..199 belong to `big` (all close to e0); chunks 200..259 to sixty one-chunk documents."""
    rng = np.random.default_rng(0)
    big = np.eye(8)[0] * 10 + rng.random((200, 8)) * 0.1
    small = rng.random((60, 8))
    doc_of = {i: "big" for i in range(200)} | {200 + i: f"s{i:02d}" for i in range(60)}
    return np.vstack([big, small]).astype(np.float32), doc_of


def test_a_document_of_many_chunks_does_not_crowd_the_others_out() -> None:
    vectors, doc_of = _corpus()
    index, store = _Recorder(vectors), _Docs(doc_of)
    queries = np.stack([np.eye(8)[0], np.eye(8)[3]]).astype(np.float32)  # q0 meets big's 200 chunks first
    (first, second), seen = document_lists(index, store, "c", "dense", queries, 10)
    docs = [list(dict.fromkeys(doc_of[i] for i in lst.ids.tolist())) for lst in (first, second)]
    assert len(docs[0]) >= 10 and docs[0][0] == "big" and len(docs[1]) >= 10
    assert index.asked[0] == (2, 10) and all(rows == 1 for rows, _ in index.asked[1:])  # q1 was done at once
    depths = [k for _, k in index.asked]
    assert depths[-1] >= 210 and all(b >= 2 * a for a, b in itertools.pairwise(depths))
    assert set(seen) >= set(first.ids.tolist()) and seen == {i: doc_of[i] for i in seen}
    exact = index.index.search(queries[:1], 260).ids[0].tolist()  # the list is a prefix of the exact order
    assert first.ids.tolist() == exact[: first.ids.size]


def test_an_exhausted_list_stops_and_excluded_chunks_are_left_out() -> None:
    vectors, doc_of = _corpus()
    index, store = _Recorder(vectors), _Docs(doc_of)
    allowed = np.arange(195, 205)  # five chunks of big, five small documents
    (lst,), _ = document_lists(
        index, store, "c", "dense", np.eye(8)[:1].astype(np.float32), 50, allowed=allowed, exclude={200, 201}
    )
    assert sorted(lst.ids.tolist()) == [195, 196, 197, 198, 199, 202, 203, 204]
    assert index.asked == [(1, 50)]  # fewer than asked came back: every match is in it
