"""Running a plan into cited hits (retrieval/search/hits.py), with client vectors only (no model).

BM25 text queries, "more like this" over stored dense/sparse/token vectors, filters, and the exact MaxSim rerank
checked against a naive loop; hits are checked field by field against the store's own rows.
"""

from __future__ import annotations

import asyncio
from typing import cast

import numpy as np
import pytest

from encoder import ImagePart, MultimodalInput, TextPart
from retrieval.collections import CollectionSpec
from retrieval.errors import InvalidRequestError
from retrieval.indexes import IndexSet
from retrieval.registry import ModelRegistry
from retrieval.representations import Encoders
from retrieval.search.hits import Hit, SearchRunner
from retrieval.search.planner import Rerank, SearchPlan
from retrieval.store import Store
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
