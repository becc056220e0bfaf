"""Running a plan into cited hits (retrieval/search/hits.py), with client vectors only (no model).

BM25 text queries, "more like this" over stored dense/sparse/token vectors, filters, and the exact MaxSim rerank
checked against a naive loop; hits are checked field by field against the store's own rows.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import cast

import numpy as np
import pytest

from encoder import ImagePart, MultimodalInput, TextPart
from retrieval.errors import InvalidRequestError
from retrieval.indexes import IndexSet
from retrieval.models.registry import ModelRegistry
from retrieval.search.documents import prefix_of
from retrieval.search.fusion import FusionConfig, RankedList
from retrieval.search.hits import Hit, SearchRunner
from retrieval.search.planner import Rerank, SearchPlan
from retrieval.spec.collection import CollectionSpec
from retrieval.spec.encoders import Encoders
from retrieval.store import ChunkRecord, DocumentRecord, Store
from tests.retrieval.search._naive import naive_docs, naive_minmax, naive_rrf
from tests.retrieval.store._docs import DIM, make_doc

SPEC = CollectionSpec(name="c", dense_model="d", multivector_model="m", sparse_model="s")
ALL = ("dense", "multivector", "sparse", "bm25")


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> SearchRunner:
    store = Store.open(tmp_path_factory.mktemp("hits") / "db.sqlite")
    store.create_collection("c", {}, dims={"dense": DIM, "multivector": DIM})
    store.write("c", [make_doc(i) for i in range(12)])
    indexes = IndexSet(SPEC, {"dense": DIM, "multivector": DIM}, ALL)
    indexes.replay(store, "c", 0)
    return SearchRunner(SPEC, Encoders(None, None, None), indexes, store, cast(ModelRegistry, None))


def _search(runner: SearchRunner, plan: SearchPlan) -> list[Hit]:
    return asyncio.run(runner.search(plan))


def test_a_bm25_query_cites_the_stored_chunks(runner: SearchRunner) -> None:
    hits = _search(runner, SearchPlan(query="00003-00-0", mode="bm25", modes=("bm25",), top_k=3))
    assert hits and hits[0].doc_id == "d3" and hits[0].chunk == 0
    for hit in hits:
        row = runner.store.get_chunk_by_key("c", hit.id)
        assert (hit.doc_id, hit.chunk, hit.text, hit.page, hit.source) == (
            row.doc_id,
            row.position,
            row.text,
            row.page,
            row.source,
        )
        assert (hit.char_start, hit.char_end, hit.metadata) == (row.char_start, row.char_end, row.metadata)
        assert set(hit.scores) == {"bm25"} and hit.score == hit.scores["bm25"]


def test_filters_restrict_hits_and_an_empty_match_returns_nothing(runner: SearchRunner) -> None:
    plan = SearchPlan(query=None, like="d4", modes=("dense",), top_k=50, filter={"even": True})
    hits = _search(runner, plan)
    assert hits and all(h.metadata["even"] for h in hits) and all(h.doc_id != "d4" for h in hits)
    assert _search(runner, SearchPlan(query="x", modes=("bm25",), filter={"number": 999})) == []


def test_more_like_this_excludes_the_document_and_fuses_every_list(runner: SearchRunner) -> None:
    hits = _search(runner, SearchPlan(query=None, like="d2", modes=ALL, top_k=8))
    assert len(hits) == 8 and all(h.doc_id != "d2" for h in hits)
    assert all("fusion" in h.scores and h.score == h.scores["fusion"] for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # the dense query is d2's mean chunk vector, normalised: the dense stage score is its cosine with the chunk
    rows = [
        runner.store.get_chunk_by_key("c", k, vectors=["dense"])
        for k in runner.store.get_document("c", "d2").chunk_keys
    ]
    mean = np.mean([r.dense for r in rows], axis=0)
    mean /= np.linalg.norm(mean)
    for h in hits:
        if "dense" in h.scores:
            v = runner.store.get_chunk_by_key("c", h.id, vectors=["dense"]).dense
            assert h.scores["dense"] == pytest.approx(float(mean @ (v / np.linalg.norm(v))), abs=1e-5)


def test_the_default_rerank_is_exact_maxsim_of_a_naive_loop(runner: SearchRunner) -> None:
    plan = SearchPlan(query=None, like="d5", modes=("dense",), top_k=5, rerank=Rerank(top_n=10))
    hits = _search(runner, plan)
    first = runner.store.get_chunk_by_key(
        "c", runner.store.get_document("c", "d5").chunk_keys[0], vectors=["multivector"]
    )
    q = first.multivector
    for h in hits:
        d = runner.store.get_chunk_by_key("c", h.id, vectors=["multivector"]).multivector
        naive = sum(max(float(qv @ dv) for dv in d) for qv in q)
        assert h.scores["rerank"] == pytest.approx(naive, abs=1e-4) and h.score == h.scores["rerank"]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_bad_queries_and_a_rerank_without_a_model(runner: SearchRunner) -> None:
    with pytest.raises(InvalidRequestError, match=r"query must be a non-empty string"):
        _search(runner, SearchPlan(query="  ", modes=("bm25",)))
    image = MultimodalInput((TextPart("x"), ImagePart("data:image/png;base64,AA==")))
    with pytest.raises(InvalidRequestError, match=r"image queries need the multivector mode"):
        _search(runner, SearchPlan(query=image, modes=("bm25",)))
    bm25_only = SearchRunner(CollectionSpec(name="c"), runner.enc, runner.indexes, runner.store, runner.models)
    with pytest.raises(InvalidRequestError, match=r"rerank needs a model: .*no default reranker") as err:
        _search(bm25_only, SearchPlan(query="00001", modes=("bm25",), rerank=Rerank()))
    assert err.value.param == "rerank.model"
    with pytest.raises(InvalidRequestError, match=r"exact MaxSim rerank needs a query"):
        _search(runner, SearchPlan(query="00001", modes=("bm25",), rerank=Rerank()))


# -- documents, not chunks (`group_by: "document"`) ----------------------------------------------------------------

GROUPED = CollectionSpec(name="g", dense_model="d", multivector_model="m", sparse_model="s")


def _grouped_docs() -> list[DocumentRecord]:
    """40 documents of 1..4 chunks, and `d01` of 30 chunks all close to `d00`'s vector and all saying `alpha`."""
    rng = np.random.default_rng(7)
    anchor = rng.standard_normal(DIM).astype(np.float32)
    docs = []
    for n in range(40):
        k = 30 if n == 1 else 1 + n % 4
        near = n in (0, 1)
        chunks, body = [], ""
        for j in range(k):
            text = f"alpha w{n}x{j} " + ("alpha beta " * (j % 3) if n == 1 else f"beta{n % 5} gamma{j}")
            dense = anchor + 0.2 * rng.standard_normal(DIM) if near else rng.standard_normal(DIM)
            start, body = len(body), body + text
            chunks.append(
                ChunkRecord(
                    text=text,
                    position=j,
                    char_start=start,
                    char_end=len(body),
                    dense=dense.astype(np.float32),
                    multivector=rng.standard_normal((3, DIM)).astype(np.float32),
                    sparse={int(t): float(rng.random()) for t in rng.choice(50, size=4, replace=False)},
                )
            )
        meta = {"number": n, "even": n % 2 == 0}
        docs.append(DocumentRecord(f"d{n:02d}", body, meta, f"{n}", None, None, tuple(chunks)))
    return docs


@pytest.fixture(scope="module")
def grouped(tmp_path_factory: pytest.TempPathFactory) -> SearchRunner:
    store = Store.open(tmp_path_factory.mktemp("grouped") / "db.sqlite")
    store.create_collection("g", {}, dims={"dense": DIM, "multivector": DIM})
    store.write("g", _grouped_docs())
    indexes = IndexSet(GROUPED, {"dense": DIM, "multivector": DIM}, ALL)
    indexes.replay(store, "g", 0)
    return SearchRunner(GROUPED, Encoders(None, None, None), indexes, store, cast(ModelRegistry, None))


def _full_list(runner: SearchRunner, plan: SearchPlan, family: str) -> RankedList:
    """Every chunk of one representation, best first, from the ungrouped search (the chunk path)."""
    deep = dataclasses.replace(plan, mode=family, modes=(family,), fusion=None, rerank=None, group_size=1)
    hits = _search(runner, dataclasses.replace(deep, top_k=999, candidates=999, group_by=None))
    ids = np.array([runner.store.get_chunk_by_key("g", h.id).chunk_id for h in hits], np.int64)
    return RankedList(ids, np.array([h.scores[family] for h in hits], np.float32))


def _doc_of(runner: SearchRunner) -> dict[int, str]:
    return {r.chunk_id: r.doc_id for batch in runner.store.iter_chunks("g") for r in batch}


def test_a_document_of_many_chunks_takes_one_place_of_the_top_10(grouped: SearchRunner) -> None:
    chunks = _search(grouped, SearchPlan(query=None, like="d00", modes=("dense",), top_k=10))
    assert {h.doc_id for h in chunks} == {"d01"}  # as chunks, one document fills the top 10
    plan = SearchPlan(query=None, like="d00", modes=("dense",), top_k=10, candidates=1, group_by="document")
    hits = _search(grouped, plan)
    rows = [r for batch in grouped.store.iter_chunks("g", vectors=["dense"]) for r in batch]
    q = np.mean([r.dense for r in rows if r.doc_id == "d00"], axis=0)
    q /= np.linalg.norm(q)
    best: dict[str, float] = {}  # brute force: a document's cosine is its best chunk's
    for r in rows:
        if r.doc_id != "d00":
            best[r.doc_id] = max(best.get(r.doc_id, -2.0), float(q @ r.dense / np.linalg.norm(r.dense)))
    want = sorted(best, key=lambda d: -best[d])[:10]
    assert [h.doc_id for h in hits] == want and want[0] == "d01"
    assert [h.score for h in hits] == pytest.approx([best[d] for d in want], abs=1e-5)
    assert all(h.scores == {"dense": h.score} for h in hits)


@pytest.mark.parametrize("candidates", [2, 15, 100])
def test_every_mode_and_fusion_ranks_documents_as_the_naive_reference(grouped: SearchRunner, candidates: int) -> None:
    doc_of = _doc_of(grouped)
    base = SearchPlan(query=None, like="d03", top_k=12, candidates=candidates, group_by="document")
    for family in ALL[:3]:
        plan = dataclasses.replace(base, mode=family, modes=(family,))
        want = naive_docs(_full_list(grouped, plan, family), doc_of, max(candidates, 12))[:12]
        assert [h.doc_id for h in _search(grouped, plan)] == [d for d, _ in want], family
    per_list = [naive_docs(_full_list(grouped, base, f), doc_of, max(candidates, 12)) for f in ALL[:3]]
    for fusion, want_order in (
        (FusionConfig("rrf", 60), naive_rrf(per_list, 60)),
        (FusionConfig("rrf", 2), naive_rrf(per_list, 2)),
        (FusionConfig("weighted"), naive_minmax(per_list)),
    ):
        plan = dataclasses.replace(base, mode="hybrid", modes=ALL[:3], fusion=fusion)
        hits = _search(grouped, plan)
        assert [h.doc_id for h in hits] == want_order[:12], fusion
        assert all("fusion" in h.scores and h.score == h.scores["fusion"] for h in hits)


def test_a_filter_and_bm25_give_distinct_matching_documents(grouped: SearchRunner) -> None:
    plan = SearchPlan(query="alpha beta", modes=("bm25",), top_k=15, candidates=1, group_by="document")
    hits = _search(grouped, plan)
    assert len(hits) == 15 and len({h.doc_id for h in hits}) == 15 and hits[0].doc_id == "d01"
    even = _search(grouped, dataclasses.replace(plan, top_k=30, filter={"even": True}))
    assert sorted(h.doc_id for h in even) == [f"d{n:02d}" for n in range(0, 40, 2)]  # all 20 that match, once


def test_group_size_returns_each_documents_best_chunks_and_rerank_runs_over_documents(grouped: SearchRunner) -> None:
    doc_of = _doc_of(grouped)
    plan = SearchPlan(
        query=None, like="d00", modes=("dense",), top_k=5, candidates=5, group_by="document", group_size=3
    )
    full = _full_list(grouped, plan, "dense")
    cut = naive_docs(full, doc_of, 5)
    hits = _search(grouped, plan)
    assert [h.doc_id for h in hits] == [d for d, _ in cut]
    prefix = prefix_of(full, doc_of, 5).ids.tolist()
    for h in hits:
        mine = [c for c in prefix if doc_of[c] == h.doc_id][:3]
        got = [grouped.store.get_chunk_by_key("g", c.id).chunk_id for c in h.chunks]
        assert got == mine and h.chunks[0].id == h.id and h.chunks[0].score == pytest.approx(h.score)
    reranked = _search(grouped, dataclasses.replace(plan, rerank=Rerank(top_n=4), group_size=2))
    q = grouped.store.get_chunk_by_key("g", "d00", vectors=["multivector"]).multivector
    maxsim: dict[str, float] = {}
    for h in hits[:4]:  # each of the 4 best documents by its 2 best candidate chunks' exact MaxSim
        for c in [c for c in prefix if doc_of[c] == h.doc_id][:2]:
            d = grouped.store.get_chunks("g", np.array([c]), vectors=["multivector"])[0].multivector
            maxsim[h.doc_id] = max(maxsim.get(h.doc_id, -1e9), sum(max(float(a @ b) for b in d) for a in q))
    assert [h.doc_id for h in reranked[:4]] == sorted(maxsim, key=lambda d: -maxsim[d])
    assert [h.scores["rerank"] for h in reranked[:4]] == pytest.approx(sorted(maxsim.values(), reverse=True), abs=1e-4)
    assert reranked[4].doc_id == hits[4].doc_id and "rerank" not in reranked[4].scores
