"""Shared by the sharding tests: a corpus whose BM25 and vector scores rarely tie, the search plans of every mode
(with and without a filter and a rerank, hybrid with each fusion), and the comparison of two rankings."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from retrieval.ingest.documents import SourceDocument
from retrieval.search.fusion import FusionConfig
from retrieval.search.hits import Hit
from retrieval.search.planner import Rerank, SearchPlan, modes_of
from retrieval.service import RetrievalService
from retrieval.spec.collection import CollectionSpec

VOCAB = [f"{a}{b}{c}" for a in "bcdfgklmnprstv" for b in "aeiou" for c in ("n", "r", "s", "th", "x", "l", "m")]


def four_models(tiny_store: Callable[[str], Path]) -> ModelRegistry:
    """Tiny dense, ColBERT, BGE-M3 (sparse) and cross-encoder checkpoints, served together."""
    specs = [
        ModelSpec(source=str(tiny_store("bert_st_mean")), name="dense"),
        ModelSpec(source=str(tiny_store("hf_colbert")), name="colbert"),
        ModelSpec(source=str(tiny_store("bge_m3")), name="m3", hf_overrides={"architectures": ["BgeM3EmbeddingModel"]}),
        ModelSpec(source=str(tiny_store("bert_ce")), name="ce", convert="classify"),
    ]
    return ModelRegistry([Engine.load(s) for s in specs])


def every_representation(name: str, shards: int) -> CollectionSpec:
    """Dense, multi-vector, sparse and BM25 over the `four_models`."""
    return CollectionSpec(name=name, dense_model="dense", multivector_model="colbert", sparse_model="m3", shards=shards)


def corpus(n: int, seed: int = 0) -> list[SourceDocument]:
    """`n` documents of 8..40 Zipf-drawn words (lengths and counts vary, so BM25 scores rarely tie)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(VOCAB) + 1) ** 0.9
    weights /= weights.sum()
    docs = []
    for i in range(n):
        words = rng.choice(VOCAB, int(rng.integers(8, 41)), p=weights)
        docs.append(SourceDocument(id=f"doc-{i}", text=" ".join(words), metadata={"i": i, "parity": i % 2}))
    return docs


def queries(docs: list[SourceDocument], n: int, seed: int = 1) -> list[str]:
    """Queries of 2..5 words taken from random documents."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        words = docs[int(rng.integers(len(docs)))].text.split()
        start = int(rng.integers(0, max(1, len(words) - 5)))
        out.append(" ".join(words[start : start + int(rng.integers(2, 6))]))
    return out


def plans(spec: CollectionSpec, query: str, rerank_model: str | None) -> Iterator[tuple[str, SearchPlan]]:
    """(label, plan) for every mode; hybrid with each fusion; each with and without a filter and a rerank."""
    variants: list[tuple[str, dict[str, Any]]] = [(m, {"mode": m}) for m in spec.modes()]
    for fusion in (FusionConfig("rrf", 60), FusionConfig("rrf", 2), FusionConfig("weighted"), FusionConfig("dbsf")):
        variants.append((f"hybrid-{fusion.method}{fusion.k}", {"mode": "hybrid", "fusion": fusion}))
    for label, kw in variants:
        for filt in (None, {"parity": 1}):
            for rerank in (
                (None, Rerank(rerank_model, 15)) if rerank_model is not None or spec.multivector_model else (None,)
            ):
                plan = SearchPlan(query, top_k=10, filter=filt, rerank=rerank, candidates=40, **kw)
                plan = dataclasses.replace(plan, modes=modes_of(spec, plan.mode))
                yield f"{label} filter={filt is not None} rerank={rerank is not None}", plan


def search(svc: RetrievalService, name: str, plan: SearchPlan) -> list[Hit]:
    return asyncio.run(svc.search(name, plan))


def assert_same_ranking(got: list[Hit], want: list[Hit], label: str, tol: float = 1e-5) -> None:
    """Same ids in the same order, every stage's score within `tol` (chunk ids follow the write order on every
    shard, so even exactly equal scores break the same way as in one store)."""
    assert [h.id for h in got] == [h.id for h in want], (label, [h.id for h in got], [h.id for h in want])
    for a, b in zip(got, want, strict=True):
        assert abs(a.score - b.score) <= tol, (label, a.id, a.score, b.score)
        assert a.scores.keys() == b.scores.keys(), (label, a.id, a.scores, b.scores)
        for stage, s in b.scores.items():
            assert abs(a.scores[stage] - s) <= tol, (label, a.id, stage, a.scores, b.scores)


def assert_same_candidates(got: list[Hit], want: list[Hit], label: str, tol: float = 1e-5) -> int:
    """One representation's candidate list: position by position the same score within `tol`, and the same id
    except where two candidates' scores are within `tol` of each other (a float near-tie: a matrix product over
    other shapes rounds the last bit differently, and may swap them). Returns how many positions were swapped."""
    assert len(got) == len(want), (label, len(got), len(want))
    swapped = 0
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert abs(a.score - b.score) <= tol, (label, i, a.id, a.score, b.id, b.score)
        if a.id != b.id:
            near = [h.score for h in want if h.id == a.id] or [a.score]
            assert abs(near[0] - b.score) <= tol or abs(a.score - b.score) <= tol, (label, i, a.id, b.id)
            swapped += 1
    return swapped


def compare(searcher: Callable[[str, SearchPlan], list[Hit]], name: str, plan: SearchPlan, label: str) -> bool:
    """`name` against the unsharded `one`: identical (True), or, when a candidate list holds a float near-tie that
    rounded the other way, every representation's candidate list equal within 1e-5 (False: the fused or
    reranked order may then differ at that tie, as in any engine that scores in float)."""
    want, got = searcher("one", plan), searcher(name, plan)
    assert want, label
    try:
        assert_same_ranking(got, want, label)
        return True
    except AssertionError:
        swaps = 0
        for family in plan.modes:
            deep = dataclasses.replace(
                plan, mode=family, modes=(family,), fusion=None, rerank=None, top_k=plan.candidates
            )
            swaps += assert_same_candidates(searcher(name, deep), searcher("one", deep), f"{label} {family}")
        assert swaps, f"{label}: the answers differ but every candidate list is identical"
        return False


def page_models(tiny_store: Callable[[str], Path]) -> ModelRegistry:
    """The page-collection tests' models: a tiny BERT (`bert`, dense) and a tiny ColQwen3 (`colqwen`, pages)."""
    return ModelRegistry(
        [
            Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="bert")),
            Engine.load(ModelSpec(source=str(tiny_store("colqwen3_colpali")), name="colqwen")),
        ]
    )
