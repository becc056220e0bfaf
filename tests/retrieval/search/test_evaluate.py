"""Evaluation helpers (retrieval/evaluation/runs.py): fusion labels and chunk hits credited to parent documents."""

from __future__ import annotations

import numpy as np

from retrieval.evaluation.runs import DEFAULT_FUSIONS, fusion_label
from retrieval.search.documents import rank_documents
from retrieval.search.fusion import FusionConfig, RankedList


def test_fusion_labels() -> None:
    assert [fusion_label(f) for f in DEFAULT_FUSIONS] == ["rrf k=60", "rrf k=2", "weighted", "dbsf"]
    weighted = FusionConfig(method="weighted", weights={"dense": 0.7, "bm25": 0.3})
    assert fusion_label(weighted) == "weighted bm25=0.3,dense=0.7"
    assert fusion_label(FusionConfig(method="rrf", k=5, weights={"dense": 2.0})) == "rrf k=5"


def test_chunk_hits_count_once_for_their_parent_at_its_first_place() -> None:
    lists = [
        RankedList(np.array([10, 11, 20, 12, 99], np.int64), np.zeros(5, np.float32)),
        RankedList(np.array([], np.int64), np.zeros(0, np.float32)),
    ]
    doc_of = {10: "a", 11: "a", 12: "a", 20: "b"}  # 99 was deleted since: skipped
    runs = [rank_documents({"dense": lst}, doc_of, FusionConfig(), 100).docs for lst in lists]
    assert runs == [["a", "b"], []]
