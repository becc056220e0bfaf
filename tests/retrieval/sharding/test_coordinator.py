"""Sharded collections through the service with in-process shards: every mode merges to exactly the unsharded
answer, writes route by id, a down shard is a 503 or a partial answer, a restarted shard has every
acknowledged write, and `/evaluate` works unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import msgspec
import numpy as np
import pytest

from retrieval import ModelRegistry
from retrieval.errors import DocumentNotFoundError, InvalidRequestError, ShardUnavailableError
from retrieval.evaluation.runs import EvalRequest
from retrieval.search.planner import SearchPlan, modes_of
from retrieval.service import RetrievalService
from retrieval.sharding.routing import shard_of
from retrieval.spec.collection import ChunkingSpec, CollectionSpec
from tests.retrieval.sharding.equality import (
    assert_same_ranking,
    corpus,
    every_representation,
    plans,
    queries,
    search,
)
from tests.retrieval.sharding.local_group import LocalBackend

N_DOCS = 600


@pytest.fixture(scope="module")
def registry(four_model_registry: ModelRegistry) -> ModelRegistry:
    return four_model_registry


@pytest.fixture(scope="module")
def filled(
    tmp_path_factory: pytest.TempPathFactory, registry: ModelRegistry
) -> Iterator[tuple[RetrievalService, LocalBackend]]:
    """One service: `one` (this process), `two` and `three` (in-process shards), the same documents in each."""
    root = tmp_path_factory.mktemp("sharded")
    backend = LocalBackend(root / "shards")
    svc = RetrievalService.open(root / "data", registry, default_collection=None, shards=backend)
    docs = corpus(N_DOCS)
    for name, shards in (("one", 1), ("two", 2), ("three", 3)):
        svc.create_collection_sync(every_representation(name, shards))
        for i in range(0, len(docs), 200):
            asyncio.run(svc.add_documents(name, docs[i : i + 200]))
    yield svc, backend
    svc.close()


def test_every_mode_merges_to_the_unsharded_answer(filled: tuple[RetrievalService, LocalBackend]) -> None:
    svc, _ = filled
    spec = svc.spec("one")
    for query in queries(corpus(N_DOCS), 3):
        for label, plan in plans(spec, query, "ce"):
            want = search(svc, "one", plan)
            assert want, label
            for name in ("two", "three"):
                assert_same_ranking(search(svc, name, plan), want, f"{name} {label}")


def test_more_like_this_and_a_rerank_run_after_the_merge(filled: tuple[RetrievalService, LocalBackend]) -> None:
    svc, _ = filled
    spec = svc.spec("one")
    for doc_id in ("doc-3", "doc-444"):
        like = SearchPlan(None, top_k=8, mode="hybrid", modes=modes_of(spec, "hybrid"), like=doc_id)
        want = search(svc, "one", like)
        assert want and all(h.doc_id != doc_id for h in want)
        for name in ("two", "three"):
            assert_same_ranking(search(svc, name, like), want, f"{name} like {doc_id}")


def test_documents_live_on_the_shard_their_id_hashes_to(filled: tuple[RetrievalService, LocalBackend]) -> None:
    svc, backend = filled
    group = backend.groups["three"]
    counts = [core.info().documents for core in group.cores]
    assert sum(counts) == N_DOCS and min(counts) > N_DOCS // 5
    for doc_id in ("doc-0", "doc-17", "doc-599"):
        owner = shard_of(doc_id, 3)
        assert group.cores[owner].get_document(doc_id).id == doc_id
        for other in set(range(3)) - {owner}:
            with pytest.raises(DocumentNotFoundError):
                group.cores[other].get_document(doc_id)
    info = svc.collection("three")
    assert info.documents == N_DOCS and [s.documents for s in info.shards] == counts
    assert svc.get_document("three", "doc-17").text == svc.get_document("one", "doc-17").text
    assert svc.get_chunk("three", "doc-17").doc_id == "doc-17"


def test_evaluate_on_a_sharded_collection_equals_the_unsharded(filled: tuple[RetrievalService, LocalBackend]) -> None:
    svc, _ = filled
    docs = corpus(N_DOCS)
    qs = {f"q{i}": q for i, q in enumerate(queries(docs, 12, seed=5))}
    qrels = {qid: {docs[(7 * i) % N_DOCS].id: 1} for i, qid in enumerate(qs)}
    req = EvalRequest(queries=qs, qrels=qrels)
    want = asyncio.run(svc.evaluate("one", req))
    got = asyncio.run(svc.evaluate("three", req))
    assert [(r.mode, r.fusion) for r in got] == [(r.mode, r.fusion) for r in want]
    assert any(r.ndcg_at_10 > 0 for r in want)
    for a, b in zip(got, want, strict=True):
        assert a == pytest.approx(b, abs=1e-9), (a, b)


def test_a_down_shard_is_a_503_or_a_partial_answer_and_comes_back_whole(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    backend = LocalBackend(tmp_path / "shards")
    svc = RetrievalService.open(tmp_path / "data", registry, default_collection=None, shards=backend)
    try:
        svc.create_collection_sync(CollectionSpec(name="c", dense_model="dense", shards=3))
        docs = corpus(90)
        asyncio.run(svc.add_documents("c", docs))
        group = backend.groups["c"]
        group.down.add(1)
        plan = SearchPlan(docs[0].text, mode="hybrid", modes=modes_of(svc.spec("c"), "hybrid"))
        with pytest.raises(ShardUnavailableError, match="shard 1 of 3"):
            asyncio.run(svc.search("c", plan))
        answer, answered = asyncio.run(svc.search_shards("c", SearchPlan(**{**plan.__dict__, "allow_partial": True})))
        hits = answer.hits
        assert answered == [0, 2] and hits
        assert all(shard_of(h.doc_id, 3) != 1 for h in hits)
        on_down = next(d for d in corpus(200)[90:] if shard_of(d.id, 3) == 1)
        elsewhere = next(d for d in corpus(200)[90:] if shard_of(d.id, 3) == 0)
        with pytest.raises(ShardUnavailableError) as refused:
            asyncio.run(svc.add_documents("c", [on_down, elsewhere]))
        assert refused.value.written == []  # the down shard refused before anything was written anywhere
        assert svc.collection("c").shards[1].state == "unavailable"
        group.restart(1)  # reopens from its store and snapshots
        assert svc.collection("c").documents == 90
        done = asyncio.run(svc.add_documents("c", [on_down, elsewhere]))
        assert sorted(done.ids) == sorted([on_down.id, elsewhere.id])
        assert asyncio.run(svc.delete_documents("c", [on_down.id])) == 1
        assert svc.collection("c").documents == 91
    finally:
        svc.close()


def test_sharded_collections_need_a_backend(tmp_path: Path, registry: ModelRegistry) -> None:
    svc = RetrievalService.open(tmp_path, registry, default_collection=None)
    try:
        with pytest.raises(InvalidRequestError, match="--ray"):
            svc.create_collection_sync(CollectionSpec(name="c", dense_model="dense", shards=2))
        with pytest.raises(InvalidRequestError, match="shards must be"):
            svc.create_collection_sync(CollectionSpec(name="c", dense_model="dense", shards=0))
    finally:
        svc.close()


def test_a_write_between_the_statistics_and_the_search_is_counted(tmp_path: Path) -> None:
    """The shards' BM25 statistics are summed in one round trip and the search is a second: a write landing on a
    shard in between raises its own figures above the summed ones, which the shard then counts (never a 500)."""
    from index import BM25Stats
    from retrieval.sharding.shard import ShardCore
    from retrieval.store import ChunkRecord, DocumentRecord

    def record(doc_id: str, text: str) -> DocumentRecord:
        chunk = ChunkRecord(text=text, position=0, char_start=0, char_end=len(text))
        return DocumentRecord(id=doc_id, text=text, metadata={}, content_hash=doc_id + text, chunks=(chunk,))

    core = ShardCore(tmp_path, 0, {"name": "b", "bm25": True}, {})
    core.write(
        [record(f"d{i}", f"tea leaf number {i}") for i in range(5)], first_ids={f"d{i}": i + 1 for i in range(5)}
    )
    summed = BM25Stats.merge([core.bm25_stats(["tea", "leaf"])])
    core.write([record("late", "tea tea tea")], first_ids={"late": 100})
    hits = core.search("bm25", ["tea"], 3, None, summed)
    assert hits.ids[0][0] == 100 and np.isfinite(hits.scores[0][:3]).all()


def test_document_grouped_searches_merge_to_the_unsharded_answer(tmp_path: Path, registry: ModelRegistry) -> None:
    """Documents of several chunks: every mode, fusion, filter and rerank grouped by document gives the same
    documents, chunks and scores over 3 shards as in one store (the coordinator merges the shards' chunk lists,
    each shard names its chunks' documents)."""
    backend = LocalBackend(tmp_path / "shards")
    svc = RetrievalService.open(tmp_path / "data", registry, default_collection=None, shards=backend)
    try:
        docs = corpus(120, seed=4)
        for name, shards in (("one", 1), ("three", 3)):
            spec = every_representation(name, shards)
            svc.create_collection_sync(msgspec.structs.replace(spec, chunking=ChunkingSpec(max_tokens=8, overlap=2)))
            asyncio.run(svc.add_documents(name, docs))
        assert svc.collection("one").chunks > 2 * len(docs)
        for query in queries(docs, 2, seed=9):
            for label, plan in plans(svc.spec("one"), query, "ce"):
                grouped = SearchPlan(**{**plan.__dict__, "group_by": "document", "group_size": 2, "candidates": 5})
                want = search(svc, "one", grouped)
                assert len({h.doc_id for h in want}) == len(want) == 10, label
                got = search(svc, "three", grouped)
                assert_same_ranking(got, want, f"three grouped {label}")
                assert [[c.id for c in h.chunks] for h in got] == [[c.id for c in h.chunks] for h in want], label
    finally:
        svc.close()
