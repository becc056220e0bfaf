"""Crash consistency against an independent reference: documents carry client vectors (dense + multi-vector),
so every search result of a restarted server can be recomputed here with numpy from the acknowledged history.

Writers stream upserts and deletes (one request at a time each) and record a document's state only once the
server answered 2xx. After a restart, `check` observes every id by GET, settles the requests that were in
flight at the kill (all old or all new, never a mix), then compares the collection's counts, "more like this"
searches in the dense and multi-vector modes (every live document, each once, with its exact score) and an
all-words BM25 search (every live document, each once) with the reference.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from tests.api._crash_stream import VOCAB

__all__ = ["COLLECTION", "MV_MODEL", "SPEC", "Doc", "Op", "Tally", "VectorWriter", "check", "reference_scores"]

COLLECTION = "vcrash"
MV_MODEL = "mv"  # served name of the tiny ColBERT (its query side is never used: searches are "more like this")
SPEC = {
    "name": COLLECTION,
    "dense_model": "tiny",
    "multivector_model": MV_MODEL,
    "chunking": {"mode": "truncate"},
    "index": {"multivector": {"dtype": "float32"}},  # fp32 MaxSim, so scores equal the numpy reference at 1e-4
}
DENSE_DIM, MV_DIM = 32, 16  # widths of the tiny BERT and the tiny ColBERT
DOCS = f"/v1/collections/{COLLECTION}/documents"
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class Doc:
    """One written state of a document (client vectors: one chunk, the whole text)."""

    text: str  # random VOCAB words
    version: int  # 48 random bits: the write's identity, also stored as metadata `v`
    dense: F32  # float32 (DENSE_DIM,)
    multivector: F32  # float32 (m, MV_DIM), values exact in float16 (the store keeps float16)

    def body(self, doc_id: str) -> dict[str, Any]:
        vectors = {"dense": self.dense.tolist(), "multivector": self.multivector.tolist()}
        return {"id": doc_id, "text": self.text, "metadata": {"uid": doc_id, "v": self.version}, "vectors": vectors}


State = Doc | None  # None: absent (never written, or deleted)


@dataclass
class Op:
    """One request: the states it moves its documents from and to."""

    kind: Literal["put", "delete"]  # POST documents, POST documents/delete
    before: dict[str, State]  # acknowledged state of each id when sent
    after: dict[str, State]  # state of each id once committed
    sent: bool = True  # False when no connection could be opened


@dataclass
class Tally:
    """Figures of one run, for assertions and the report."""

    cycles: int = 0  # kills followed by a restart and a full check
    acked_ops: int = 0  # requests answered 2xx
    acked_docs: int = 0  # document upserts and deletes inside them
    checked_present: int = 0  # (document, restart) pairs found with its exact vectors
    checked_absent: int = 0  # (absent id, restart) pairs found nowhere
    searches: int = 0  # searches compared with the numpy reference
    inflight: Counter[str] = field(default_factory=Counter)  # outcome of requests in flight: old / new / ...
    opened: Counter[str] = field(default_factory=Counter)  # how the collection came up: snapshot / rebuild
    mid_file: int = 0  # kills that left a snapshot file half-written (a `.tmp-` file)
    mid_save: int = 0  # kills between a snapshot's data files and its manifest (files no manifest names)


def _new_doc(rng: random.Random) -> Doc:
    gen = np.random.default_rng(rng.getrandbits(32))
    rows = rng.randint(2, 4)
    return Doc(
        " ".join(rng.choices(VOCAB, k=rng.randint(2, 12))),
        rng.getrandbits(48),
        gen.standard_normal(DENSE_DIM).astype(np.float32),
        gen.standard_normal((rows, MV_DIM)).astype(np.float16).astype(np.float32),
    )


class VectorWriter(threading.Thread):
    """Streams random upserts and deletes of its own 16 ids until `stop` is set or a request fails."""

    def __init__(self, url: str, prefix: str, state: dict[str, State], seed: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.state, self.stop = url, state, stop
        self.rng = random.Random(seed)
        self.ids = [f"{prefix}-{i}" for i in range(16)]  # the ids this writer owns
        self.pending: Op | None = None  # the request sent and not yet answered
        self.error: str | None = None  # an unexpected answer (the test fails on it)
        self.acked_ops = self.acked_docs = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                op = self.pending = self._next()
                try:
                    resp = self._send(client, op)
                except httpx.ConnectError:  # never reached a server
                    op.sent = False
                    return
                except httpx.TransportError:  # connection lost mid-request: either outcome is allowed
                    return
                if resp.status_code != 200:
                    self.error = f"{op.kind} {list(op.after)} -> {resp.status_code} {resp.text}"
                    return
                self.state.update(op.after)
                self.acked_ops, self.acked_docs = self.acked_ops + 1, self.acked_docs + len(op.after)
                self.pending = None

    def _next(self) -> Op:
        ids = self.rng.sample(self.ids, self.rng.randint(1, 3))
        before = {i: self.state.get(i) for i in ids}
        if self.rng.random() < 0.25:
            return Op("delete", before, dict.fromkeys(ids))
        return Op("put", before, {i: _new_doc(self.rng) for i in ids})

    def _send(self, client: httpx.Client, op: Op) -> httpx.Response:
        if op.kind == "delete":
            return client.post(f"{DOCS}/delete", json={"ids": list(op.after)})
        return client.post(DOCS, json={"documents": [d.body(i) for i, d in op.after.items() if d is not None]})


def reference_scores(live: dict[str, Doc], query_id: str, mode: Literal["dense", "multivector"]) -> dict[str, float]:
    """Exact scores of every live document but `query_id` for "more like this" `query_id` (float64 numpy):
    dense: cosine of the two vectors; multi-vector: MaxSim of the query's token vectors against each document's.

    >>> a = Doc("x", 1, np.array([3, 4], np.float32), np.eye(2, dtype=np.float32))
    >>> b = Doc("y", 2, np.array([1, 0], np.float32), np.array([[2, 0], [0, -1]], np.float32))
    >>> reference_scores({"a": a, "b": b}, "a", "dense"), reference_scores({"a": a, "b": b}, "a", "multivector")
    ({'b': 0.6}, {'b': 2.0})
    """
    query = live[query_id]
    out = {}
    for doc_id, doc in live.items():
        if doc_id == query_id:
            continue
        if mode == "dense":
            q, v = query.dense.astype(np.float64), doc.dense.astype(np.float64)
            out[doc_id] = float(q @ v / (np.linalg.norm(q) * np.linalg.norm(v)))
        else:
            sims = query.multivector.astype(np.float64) @ doc.multivector.astype(np.float64).T
            out[doc_id] = float(sims.max(axis=1).sum())
    return out


def _observe(client: httpx.Client, doc_id: str) -> int | None:
    """The version GET reports for `doc_id` (None when absent), after checking the document is whole."""
    resp = client.get(f"{DOCS}/{doc_id}")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["metadata"]["uid"] == doc_id and body["chunks"] == [doc_id], body
    return int(body["metadata"]["v"])


def _settle(op: Op, seen: dict[str, int | None], tally: Tally) -> dict[str, State]:
    """The in-flight request left its documents all old or all new; returns the states it left."""
    version = {i: seen[i] for i in op.after}
    old = {i: None if d is None else d.version for i, d in op.before.items()}
    new = {i: None if d is None else d.version for i, d in op.after.items()}
    if old == new:
        tally.inflight["no-op"] += 1
        return op.before
    assert version in ((old,) if not op.sent else (old, new)), (op.kind, version, old, new)
    outcome = "unsent" if not op.sent else "new" if version == new else "old"
    tally.inflight[outcome] += 1
    return op.after if outcome == "new" else op.before


def _reconcile(client: httpx.Client, states: dict[str, State], pending: list[Op], tally: Tally) -> None:
    """Check every id against the acknowledged state (GET), settle in-flight requests, update `states`."""
    ids = sorted(set(states) | {i for op in pending for i in op.after})
    with ThreadPoolExecutor(4) as pool:
        seen = dict(zip(ids, pool.map(lambda i: _observe(client, i), ids), strict=True))
    settled: dict[str, State] = {}
    for op in pending:
        settled.update(_settle(op, seen, tally))
    for doc_id in ids:
        if doc_id not in settled:
            doc = states.get(doc_id)
            assert seen[doc_id] == (None if doc is None else doc.version), (doc_id, seen[doc_id], doc)
    states.update(settled)


def _search(client: httpx.Client, **body: Any) -> dict[str, float]:
    resp = client.post(f"/v1/collections/{COLLECTION}/search", json=body)
    assert resp.status_code == 200, resp.text
    hits = resp.json()["data"]
    got = {h["id"]: h["score"] for h in hits}
    assert len(got) == len(hits), [h["id"] for h in hits]  # no duplicate
    return got


def check(client: httpx.Client, states: dict[str, State], pending: list[Op], rng: random.Random, tally: Tally) -> None:
    """Everything the restarted server answers equals the reference built from `states` (see the docstring)."""
    _reconcile(client, states, pending, tally)
    live = {i: d for i, d in states.items() if d is not None}
    info = client.get(f"/v1/collections/{COLLECTION}").json()
    assert (info["documents"], info["chunks"]) == (len(live), len(live)), info
    tally.checked_present += len(live)
    tally.checked_absent += len(states) - len(live)
    if not live:
        return
    n = len(live)
    for query_id in rng.sample(sorted(live), min(3, n)):
        for mode in ("dense", "multivector"):
            got = _search(client, like=query_id, mode=mode, top_k=n, candidates=n)
            assert got == pytest.approx(reference_scores(live, query_id, mode), rel=1e-4, abs=1e-4), mode
            tally.searches += 1
    every = _search(client, query=" ".join(VOCAB), mode="bm25", top_k=n, candidates=n)
    assert set(every) == set(live), (sorted(set(every) ^ set(live)), n)
    tally.searches += 1
