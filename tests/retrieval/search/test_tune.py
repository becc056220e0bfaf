"""The fusion tuner end to end on a real MiniLM collection (dense + its token vectors + BM25)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest

from retrieval import ModelRegistry
from retrieval.evaluation.tune.grid import TuneSpace
from retrieval.evaluation.tune.tuner import TuneRequest
from retrieval.ingest.documents import SourceDocument
from retrieval.search.planner import SearchPlan
from retrieval.service import RetrievalService
from retrieval.spec.collection import ChunkingSpec, CollectionSpec
from tests.conftest import MINILM

TOPICS = ["protein folding", "volcano eruption", "stock market", "football match", "jazz music", "rain forest"]
SMALL = TuneSpace(weights=[0.0, 0.5, 1.0], candidates=[20, 10], rerank=[5], rerank_top=2)


def _corpus() -> tuple[list[SourceDocument], dict[str, str], dict[str, dict[str, int]]]:
    rng = np.random.default_rng(3)
    docs, queries, qrels = [], {}, {}
    for i in range(36):
        topic = TOPICS[i % len(TOPICS)]
        words = " ".join(rng.choice(["study", "report", "new", "data", "large", "early", "many"], 6))
        docs.append(SourceDocument(id=f"d{i}", text=f"{topic} {words} number {i}"))
        queries[f"q{i}"] = f"{topic} {words.split()[0]} number {i}"
        qrels[f"q{i}"] = {f"d{i}": 1, f"d{(i + 6) % 36}": 1}
    return docs, queries, qrels


class _Watched(dict[str, dict[str, int]]):
    """Held-out judgments that remember how far the tuner had got when it first read them."""

    def __init__(self, data: Mapping[str, dict[str, int]], log: list[tuple[int, int]]) -> None:
        super().__init__(data)
        self.log = log
        self.first: tuple[int, int] | None = None

    def _seen(self) -> None:
        if self.first is None:
            self.first = self.log[-1] if self.log else (0, 0)

    def __getitem__(self, key: str) -> dict[str, int]:
        self._seen()
        return super().__getitem__(key)

    def __iter__(self) -> Iterator[str]:
        self._seen()
        return super().__iter__()

    def items(self) -> Any:
        self._seen()
        return super().items()


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, minilm_registry: ModelRegistry) -> Iterator[RetrievalService]:
    service = RetrievalService.open(tmp_path_factory.mktemp("tune"), minilm_registry, default_collection=None)
    service.create_collection_sync(CollectionSpec(name="t", dense_model=MINILM, multivector_model=MINILM))
    docs, _, _ = _corpus()
    asyncio.run(service.add_documents("t", docs))
    yield service
    service.close()


def test_tune_reports_chosen_and_default_and_reads_test_judgments_only_after_choosing(svc: RetrievalService) -> None:
    _, queries, qrels = _corpus()
    train = {q: qrels[q] for q in list(qrels)[:24]}
    log: list[tuple[int, int]] = []
    test = _Watched({q: qrels[q] for q in list(qrels)[24:]}, log)
    req = TuneRequest(queries, train, test, budget_s=60, space=SMALL)
    report = asyncio.run(svc.tune("t", req, progress=lambda d, t: log.append((d, t))))
    assert test.first is not None and test.first[0] == test.first[1]  # read only once every setting was tried
    assert report.tried == report.total > 50 and report.train_queries == 24 and report.test_queries == 12
    names = [r.name for r in report.rows]
    assert names[:3] == ["chosen", "default", "dense"] or names[:2] == ["chosen", "default"]
    assert {"dense", "multivector", "bm25"} <= set(names)
    by = {r.name: r for r in report.rows}
    assert by["chosen"].train.ndcg_at_10 >= by["default"].train.ndcg_at_10 - 1e-9
    assert all(r.test is not None and 0 <= r.test.ndcg_at_10 <= 1 for r in report.rows)
    assert report.default.label() == "dense+multivector+bm25 rrf k=60 c=100" and report.cv is None
    assert report.procedure in report.estimates and len(report.estimates) == 4  # the rule chosen on train too
    assert report.estimates[report.procedure] == max(report.estimates.values())
    assert not report.applied and svc.spec("t").fusion.method == "rrf" and svc.spec("t").candidates == 100


def test_without_a_test_split_cross_validation_estimates_and_apply_stores_the_choice(svc: RetrievalService) -> None:
    _, queries, qrels = _corpus()
    req = TuneRequest(queries, qrels, None, budget_s=60, folds=3, space=SMALL)
    report = asyncio.run(svc.tune("t", req, apply=True))
    assert report.cv is not None and report.cv["folds"] == 3 and 0 <= report.cv["chosen"] <= 1
    assert all(r.test is None for r in report.rows) and report.test_queries == 0 and report.applied
    spec = svc.spec("t")
    assert spec.fusion == report.fusion and spec.candidates == report.chosen.candidates
    assert spec.rerank_depth == report.chosen.rerank
    again = RetrievalService.open(svc.data_dir, svc.models, default_collection=None)  # durable: a second reader
    try:
        assert again.spec("t").fusion == report.fusion
    finally:
        again.store.close()
    hits = asyncio.run(svc.search("t", SearchPlan(queries["q4"], top_k=3)))
    assert hits and hits[0].doc_id in qrels["q4"]


def test_a_tiny_budget_stops_early_but_still_reports_the_default(svc: RetrievalService) -> None:
    _, queries, qrels = _corpus()
    report = asyncio.run(svc.tune("t", TuneRequest(queries, qrels, None, budget_s=1e-6, space=SMALL)))
    assert report.tried < report.total and report.rows[1].name == "default"


def test_held_out_figures_are_what_the_applied_setting_answers(svc: RetrievalService) -> None:
    """The chosen setting's held-out nDCG@10 is the one the service's own search returns once it is applied."""
    from retrieval.evaluation.measures import dedupe, ndcg_at_k
    from retrieval.search.planner import modes_of

    _, queries, qrels = _corpus()
    train = {q: qrels[q] for q in list(qrels)[:24]}
    test = {q: qrels[q] for q in list(qrels)[24:]}
    report = asyncio.run(svc.tune("t", TuneRequest(queries, train, test, budget_s=60, space=SMALL), apply=True))
    try:
        spec = svc.spec("t")
        run = {}
        for q in test:
            plan = SearchPlan(queries[q], top_k=10, mode="hybrid", modes=modes_of(spec, "hybrid"), group_by="document")
            if spec.rerank_depth:
                from retrieval.search.planner import Rerank

                plan = SearchPlan(**{**plan.__dict__, "rerank": Rerank(None, spec.rerank_depth)})
            plan = SearchPlan(**{**plan.__dict__, "candidates": spec.candidates})
            run[q] = dedupe(h.doc_id for h in asyncio.run(svc.search("t", plan)))
        chosen = next(r for r in report.rows if r.name == "chosen")
        assert chosen.test is not None
        assert chosen.test.ndcg_at_10 == pytest.approx(ndcg_at_k(run, test, 10), abs=1e-12)
    finally:
        from retrieval.search.fusion import FusionConfig
        from retrieval.spec.collection import CollectionUpdate

        asyncio.run(svc.update_collection("t", CollectionUpdate(fusion=FusionConfig(), candidates=100, rerank_depth=0)))


def _long_corpus() -> tuple[list[SourceDocument], dict[str, str], dict[str, dict[str, int]]]:
    """48 documents of ~36 words (several chunks each at 12 tokens), queries judged on two of them."""
    rng = np.random.default_rng(11)
    filler = ["study", "report", "new", "data", "large", "early", "many", "field", "result", "team", "city", "year"]
    docs, queries, qrels = [], {}, {}
    for i in range(48):
        topic = TOPICS[i % len(TOPICS)]
        parts = [f"{topic} {' '.join(rng.choice(filler, 5))} item{i}" for _ in range(5)]
        docs.append(SourceDocument(id=f"d{i}", text=". ".join(parts)))
        queries[f"q{i}"] = f"{topic} {parts[i % 5].split()[2]} item{i}"
        qrels[f"q{i}"] = {f"d{i}": 2, f"d{(i + 6) % 48}": 1}
    return docs, queries, qrels


def test_evaluate_and_tune_score_documents_the_same_way(svc: RetrievalService) -> None:
    """On a collection of multi-chunk documents, `/evaluate` and `tune` report the same nDCG@10, recall@100 and
    MRR@10 for the same setting and split (each document once, as a grouped search returns them)."""
    from retrieval.evaluation.runs import EvalRequest
    from retrieval.search.fusion import FusionConfig

    spec = CollectionSpec(
        name="split",
        dense_model=MINILM,
        multivector_model=MINILM,
        chunking=ChunkingSpec(mode="split", max_tokens=12, overlap=2),
    )
    svc.create_collection_sync(spec)
    docs, queries, qrels = _long_corpus()
    asyncio.run(svc.add_documents("split", docs))
    assert svc.collection("split").chunks > 3 * len(docs)
    train = {q: qrels[q] for q in list(qrels)[:30]}
    test = {q: qrels[q] for q in list(qrels)[30:]}
    report = asyncio.run(svc.tune("split", TuneRequest(queries, train, test, budget_s=30, space=SMALL)))
    tuned = {r.name: r for r in report.rows}
    for split, judged in (("train", train), ("test", test)):
        rows = asyncio.run(svc.evaluate("split", EvalRequest(queries, judged, fusions=[FusionConfig("rrf", 60)])))
        for row in rows:
            name = "default" if row.mode == "hybrid" else row.mode  # the default: rrf k=60 over all three, c=100
            got = getattr(tuned[name], split)
            assert got is not None
            for metric in ("ndcg_at_10", "recall_at_100", "mrr_at_10"):
                assert getattr(got, metric) == pytest.approx(getattr(row, metric), abs=1e-9), (split, name, metric)
        assert any(r.ndcg_at_10 > 0.3 for r in rows)
