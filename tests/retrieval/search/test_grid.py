"""The tuner's fast scorer (retrieval/evaluation/tune/grid.py) against nDCG@10 of `fuse` itself, setting by setting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from retrieval.evaluation.measures import dedupe, ndcg_at_k
from retrieval.evaluation.tune.grid import Judged, QueryCache, Setting, TuneSpace, score_group, setting_of, settings_of
from retrieval.search.fusion import FusionConfig, RankedList, fuse

FAMILIES = ("dense", "multivector", "bm25")


def _caches(n_queries: int, chunks_per_doc: int, seed: int) -> tuple[list[QueryCache], dict[str, dict[str, int]]]:
    rng = np.random.default_rng(seed)
    doc_of = {c: f"d{c // chunks_per_doc}" for c in range(200)}
    caches, qrels = [], {}
    for q in range(n_queries):
        lists = {}
        for f in FAMILIES:
            ids = rng.choice(200, size=60, replace=False).astype(np.int64)
            lists[f] = RankedList(ids, np.sort(rng.normal(size=60)).astype(np.float32)[::-1].copy())
        grades = {f"d{d}": int(rng.integers(1, 3)) for d in rng.choice(200 // chunks_per_doc, 6, replace=False)}
        qrels[f"q{q}"] = grades
        ideal = sorted(grades.values(), reverse=True)[:10]
        idcg = math.fsum(g / math.log2(r + 1) for r, g in enumerate(ideal, start=1))
        caches.append(QueryCache(lists, doc_of, Judged({d: float(g) for d, g in grades.items()}, idcg)))
    return caches, qrels


def _through_fuse(setting: Setting, caches: list[QueryCache], qrels: dict[str, dict[str, int]]) -> float:
    run = {}
    for q, cache in enumerate(caches):
        lists = {m: cache.truncated(m, setting.candidates) for m in setting.modes}
        weights = dict(zip(setting.modes, setting.weights, strict=True))
        order = (
            fuse(lists, FusionConfig(setting.method, setting.k, weights)) if len(lists) > 1 else lists[setting.modes[0]]
        )
        run[f"q{q}"] = dedupe(cache.doc_of[c] for c in order.ids.tolist())
    return ndcg_at_k(run, qrels, 10)


@pytest.mark.parametrize("chunks_per_doc", [1, 3])  # 3: several chunks of a document in one list (slow path)
def test_every_grid_setting_scores_as_fuse_does(chunks_per_doc: int) -> None:
    caches, qrels = _caches(12, chunks_per_doc, seed=chunks_per_doc)
    space = TuneSpace(weights=[0.0, 0.5, 1.0], candidates=[20, 50])
    groups = list(settings_of(FAMILIES, space, 50))
    assert groups[0][0] == ("rrf", 60, 50) and groups[0][1][0] == (1.0, 1.0, 1.0)  # the default comes first
    checked = 0
    for group, vectors in groups[:: max(1, len(groups) // 6)]:
        values = score_group(caches, FAMILIES, group, np.array(vectors))
        for w, row in list(zip(vectors, values, strict=True))[::3]:
            setting = setting_of(FAMILIES, *group, w)
            assert float(row.mean()) == pytest.approx(_through_fuse(setting, caches, qrels), abs=1e-9), setting
            checked += 1
    assert checked > 20


def test_settings_label_and_fusion_as_a_collection_default() -> None:
    s = setting_of(FAMILIES, "rrf", 10, 100, (1.0, 0.0, 0.5))
    assert s.modes == ("dense", "bm25") and s.label() == "dense+bm25 rrf k=10 w=1:0.5 c=100"
    assert s.fusion(FAMILIES) == FusionConfig("rrf", 10, {"dense": 1.0, "multivector": 0.0, "bm25": 0.5})
    alone = setting_of(FAMILIES, "dbsf", 60, 50, (0.0, 1.0, 0.0))
    assert alone == Setting(("multivector",), (1.0,), "rrf", 60, 50) and alone.label() == "multivector c=50"
    assert setting_of(FAMILIES, "dbsf", 60, 50, (1.0, 1.0, 1.0)).fusion(FAMILIES) == FusionConfig("dbsf", 60)
