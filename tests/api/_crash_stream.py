"""Acknowledged writes over HTTP and what must survive them: writer threads, the expected state, the checks.

The expected state of every document id is the last write the server acknowledged (2xx received). A writer
sends one request at a time, so when the server dies at most one request per writer is in flight; after the
restart its documents must be entirely in their old state or entirely in their new one (one transaction).
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from tests.api._crash import Opened

__all__ = ["COLLECTION", "MODES", "SPEC", "Op", "Tally", "Version", "Writer", "search", "verify"]

COLLECTION = "crash"
SPEC = {"name": COLLECTION, "dense_model": "tiny", "chunking": {"max_tokens": 8, "overlap": 2}}  # 1-5 chunks
MODES = ("dense", "bm25")
DOCS = f"/v1/collections/{COLLECTION}/documents"
# single WordPiece tokens and no BM25 stopword, so every chunk of every text shares a term with its text
_WORDS = """
lion tiger zebra wolf penguin falcon otter beaver moose bison camel horse eagle badger river canyon glacier meadow
forest desert island harbor valley summit copper silver marble granite cedar maple willow birch violin trumpet
guitar piano lantern compass anchor rocket comet planet orchid rose lotus cactus pepper ginger garlic lemon mango
peach cherry olive basket candle mirror ladder hammer wagon tunnel castle
"""
VOCAB = _WORDS.split()


@dataclass(frozen=True)
class Version:
    """One written state of a document."""

    text: str  # its text (random VOCAB words)
    metadata: dict[str, Any]  # {"uid": id, "v": version number}: the filter key and the write's identity


State = Version | None  # None: absent (never written, or deleted)


@dataclass
class Op:
    """One request: the states it moves its documents from and to."""

    kind: Literal["put", "delete", "delete_one"]  # POST documents, POST documents/delete, DELETE document
    before: dict[str, State]  # acknowledged state of each id when sent
    after: dict[str, State]  # state of each id once committed
    sent: bool = True  # False when no connection could be opened (the server never saw it)


@dataclass
class Tally:
    """Figures of one test run, for assertions and the report."""

    cycles: int = 0  # kills (or clean stops) followed by a restart and a full check
    acked_ops: int = 0  # requests answered 2xx
    acked_docs: int = 0  # document upserts and deletes inside them
    checked_present: int = 0  # (document, restart) pairs found by GET and every mode
    checked_absent: int = 0  # (deleted id, restart) pairs absent from GET and every mode
    inflight: Counter[str] = field(default_factory=Counter)  # outcome of requests in flight: old / new / ...
    opened: Counter[str] = field(default_factory=Counter)  # how the collection came up: snapshot / rebuild
    partial_snapshots: int = 0  # kills that left a snapshot half-written (temporary or orphan files)


class Writer(threading.Thread):
    """Streams random upserts (text and chunk count change) and deletes of its own ids until a request fails
    or `stop` is set; `state` is updated only after a 2xx, `pending` is the request in flight."""

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
                except httpx.ConnectError:  # no connection: the request never reached a server
                    op.sent = False
                    return
                except httpx.TransportError:  # connection lost: in flight, either outcome is allowed
                    return
                if resp.status_code != 200:
                    self.error = f"{op.kind} {list(op.after)} -> {resp.status_code} {resp.text}"
                    return
                self.state.update(op.after)
                self.acked_ops, self.acked_docs, self.pending = (
                    self.acked_ops + 1,
                    self.acked_docs + len(op.after),
                    None,
                )

    def _next(self) -> Op:
        present = [i for i in self.ids if self.state.get(i) is not None]
        roll = self.rng.random()
        if present and roll < 0.15:
            doc = self.rng.choice(present)
            return Op("delete_one", {doc: self.state[doc]}, {doc: None})
        ids = self.rng.sample(self.ids, self.rng.randint(1, 3))
        before = {i: self.state.get(i) for i in ids}
        if roll < 0.3:
            return Op("delete", before, dict.fromkeys(ids))
        return Op("put", before, {i: self._version(i) for i in ids})

    def _version(self, doc: str) -> Version:
        words = self.rng.choices(VOCAB, k=self.rng.randint(2, 22))  # 1 to 5 chunks of 8 tokens
        return Version(" ".join(words), {"uid": doc, "v": self.rng.getrandbits(48)})

    def _send(self, client: httpx.Client, op: Op) -> httpx.Response:
        if op.kind == "delete_one":
            return client.delete(f"{DOCS}/{next(iter(op.after))}")
        if op.kind == "delete":
            return client.post(f"{DOCS}/delete", json={"ids": list(op.after)})
        docs = [{"id": i, "text": v.text, "metadata": v.metadata} for i, v in op.after.items() if v is not None]
        return client.post(DOCS, json={"documents": docs})


def search(client: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    resp = client.post(f"/v1/collections/{COLLECTION}/search", json=body)
    assert resp.status_code == 200, resp.text
    hits: list[dict[str, Any]] = resp.json()["data"]
    return hits


def _observe(client: httpx.Client, doc: str) -> tuple[State, list[str]]:
    """(state, chunk ids) of `doc` as GET reports it."""
    resp = client.get(f"{DOCS}/{doc}")
    if resp.status_code == 404:
        return None, []
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return Version(body["text"], body["metadata"]), body["chunks"]


def _settle(op: Op, observed: dict[str, State], tally: Tally) -> None:
    """The request in flight at the kill left all its documents old or all new (never a mix)."""
    got = {i: observed[i] for i in op.after}
    if op.before == op.after:
        tally.inflight["no-op"] += 1
    elif not op.sent:
        assert got == op.before, (op, got)  # a request that never reached the server changed nothing
        tally.inflight["unsent"] += 1
    else:
        assert got in (op.before, op.after), (op, got)
        tally.inflight["new" if got == op.after else "old"] += 1


def _check_found(client: httpx.Client, doc: str, version: Version, keys: list[str]) -> None:
    """Every chunk of `doc` is found by every mode with its text as the query, and nothing else is."""
    assert keys == ([doc] if len(keys) == 1 else [f"{doc}#{p}" for p in range(len(keys))]), (doc, keys)
    for mode in MODES:
        hits = search(client, query=version.text, mode=mode, filter={"uid": doc}, top_k=len(keys) + 5)
        assert sorted(h["id"] for h in hits) == sorted(keys), (doc, mode, hits, keys)
        spans = sorted((h["chunk"], h["char_start"], h["char_end"]) for h in hits)
        for hit in hits:
            assert hit["metadata"] == version.metadata and (hit.get("parent_id") or hit["id"]) == doc, hit
            assert version.text[hit["char_start"] : hit["char_end"]] == hit["text"], (version, hit)
        # the chunks tile this version's text: none is left over from an older text
        assert spans[0][1] == 0 and spans[-1][2] == len(version.text), (version, spans)
        assert all(b[1] <= a[2] for a, b in itertools.pairwise(spans)), spans


def _check_absent(client: httpx.Client, doc: str) -> None:
    for mode in MODES:
        assert search(client, query="lion", mode=mode, filter={"uid": doc}, top_k=10) == []


def _check_whole(client: httpx.Client, chunks: set[str], n_docs: int, opened: Opened) -> None:
    """The collection's counts, every index's size at open, and unfiltered searches returning all chunks
    exactly once (a stale or duplicate entry would displace a live chunk from the top `len(chunks)`)."""
    info = client.get(f"/v1/collections/{COLLECTION}").json()
    assert (info["documents"], info["chunks"]) == (n_docs, len(chunks)), info
    assert opened.sizes == dict.fromkeys(MODES, len(chunks)), opened
    if not chunks:
        return
    for mode, query in (("dense", "lion tiger"), ("bm25", " ".join(VOCAB))):
        hits = search(client, query=query, mode=mode, top_k=len(chunks), candidates=len(chunks))
        assert len(hits) == len(chunks) and {h["id"] for h in hits} == chunks, (mode, len(hits), len(chunks))


def verify(client: httpx.Client, states: dict[str, State], pending: list[Op], opened: Opened, tally: Tally) -> None:
    """Check the restarted server against `states` (acknowledged writes) and the requests in flight, then make
    `states` the observed one (what the in-flight requests turned out to be)."""
    ids = sorted(set(states) | {i for op in pending for i in op.after})
    with ThreadPoolExecutor(4) as pool:
        seen = dict(zip(ids, pool.map(lambda i: _observe(client, i), ids), strict=True))
    observed = {i: s for i, (s, _) in seen.items()}
    touched = set()
    for op in pending:
        _settle(op, observed, tally)
        touched |= set(op.after)
    for doc in ids:
        if doc not in touched:
            assert observed[doc] == states.get(doc), (doc, observed[doc], states.get(doc))
    states.update(observed)
    present = [(i, s, seen[i][1]) for i, s in observed.items() if s is not None]
    absent = [i for i, s in observed.items() if s is None]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda d: _check_found(client, *d), present))
        list(pool.map(lambda i: _check_absent(client, i), absent))
    tally.checked_present += len(present)
    tally.checked_absent += len(absent)
    _check_whole(client, {k for _, _, keys in present for k in keys}, len(present), opened)
