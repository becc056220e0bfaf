"""IR metrics against hand-computed values and a naive trec_eval-style reimplementation; the BEIR loader."""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.errors import CorruptFileError, InvalidRequestError
from retrieval.evaluation import measures as evaluation
from retrieval.evaluation.measures import (
    BeirData,
    EvalRow,
    dedupe,
    evaluate_run,
    format_table,
    load_beir,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)

QRELS = {
    "q1": {"d1": 2, "d2": 1, "d3": 0},
    "q2": {"d4": 1},
    "q3": {"d9": 0},  # no relevant document: not averaged
}


def test_hand_computed_values() -> None:
    run = {"q1": ["d3", "d1", "d5", "d2"], "q2": ["d6", "d7"], "q3": ["d9"]}
    # q1: DCG = 2/log2(3) + 1/log2(5); ideal = 2/1 + 1/log2(3); q2: nothing relevant retrieved -> 0
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 + 1 / math.log2(3)
    assert ndcg_at_k(run, QRELS, 10) == pytest.approx((dcg / idcg + 0) / 2)
    assert ndcg_at_k(run, QRELS, 2) == pytest.approx((2 / math.log2(3) / idcg + 0) / 2)
    assert recall_at_k(run, QRELS, 100) == pytest.approx((2 / 2 + 0) / 2)
    assert recall_at_k(run, QRELS, 3) == pytest.approx((1 / 2 + 0) / 2)
    assert mrr_at_k(run, QRELS, 10) == pytest.approx((1 / 2 + 0) / 2)
    assert mrr_at_k(run, QRELS, 1) == 0.0


def test_perfect_run_scores_one_and_missing_queries_score_zero() -> None:
    perfect = {"q1": ["d1", "d2"], "q2": ["d4"]}
    assert ndcg_at_k(perfect, QRELS) == pytest.approx(1.0)
    assert recall_at_k(perfect, QRELS) == 1.0 and mrr_at_k(perfect, QRELS) == 1.0
    half = {"q1": ["d1", "d2"]}  # q2 absent from the run
    assert ndcg_at_k(half, QRELS) == pytest.approx(0.5)
    assert recall_at_k(half, QRELS) == 0.5 and mrr_at_k(half, QRELS) == 0.5
    assert ndcg_at_k({}, {"q": {"d": 0}}) == 0.0  # nothing to average


def test_duplicates_count_once_at_their_first_place() -> None:
    qrels = {"q": {"a": 1, "b": 1}}
    run = {"q": ["x", "a", "a", "a", "b"]}  # chunks of parent `a` repeated
    assert dedupe(run["q"]) == ["x", "a", "b"]
    assert recall_at_k(run, qrels, 3) == 1.0  # dedupe first, then cut at k
    assert ndcg_at_k(run, qrels, 10) == pytest.approx((1 / math.log2(3) + 1 / 2) / (1 + 1 / math.log2(3)))


def test_negative_grades_gain_nothing() -> None:
    qrels = {"q": {"bad": -1, "good": 1}}
    assert ndcg_at_k({"q": ["bad", "good"]}, qrels) == pytest.approx(1 / math.log2(3))


@pytest.mark.parametrize("k", [0, -1, True])
def test_k_must_be_positive(k: int) -> None:
    with pytest.raises(InvalidRequestError) as err:
        ndcg_at_k({}, QRELS, k)
    assert err.value.param == "k"


def naive_scores(ranking: list[str], judged: dict[str, int], k: int) -> tuple[float, float, float]:
    """One query's nDCG/recall/RR written independently: explicit loops, ideal from the judged docs sorted."""
    seen: list[str] = []
    for doc in ranking:
        if doc not in seen:
            seen.append(doc)
    top = seen[:k]
    gains = [max(judged.get(d, 0), 0) for d in top]
    dcg = sum(g / math.log(i + 2, 2) for i, g in enumerate(gains))
    best = sorted(judged, key=lambda d: -judged[d])[:k]
    idcg = sum(max(judged[d], 0) / math.log(i + 2, 2) for i, d in enumerate(best))
    relevant = [d for d, g in judged.items() if g >= 1]
    rr = 0.0
    for i, d in enumerate(top):
        if d in relevant:
            rr = 1 / (i + 1)
            break
    return dcg / idcg, len([d for d in top if d in relevant]) / len(relevant), rr


DOCS = [f"d{i}" for i in range(12)]


@settings(max_examples=150, deadline=None)
@given(
    qrels=st.dictionaries(
        st.sampled_from(["q1", "q2", "q3", "q4"]),
        st.dictionaries(st.sampled_from(DOCS), st.integers(-1, 3)),
        max_size=4,
    ),
    run=st.dictionaries(st.sampled_from(["q1", "q2", "q3", "q5"]), st.lists(st.sampled_from(DOCS), max_size=15)),
    k=st.integers(1, 12),
)
def test_matches_naive_reference(qrels: dict, run: dict, k: int) -> None:
    judged = [q for q, j in qrels.items() if any(g > 0 for g in j.values())]
    per_query = [naive_scores(run.get(q, []), qrels[q], k) for q in judged]
    for got, column in ((ndcg_at_k(run, qrels, k), 0), (recall_at_k(run, qrels, k), 1), (mrr_at_k(run, qrels, k), 2)):
        expected = sum(s[column] for s in per_query) / len(per_query) if per_query else 0.0
        assert got == pytest.approx(expected, abs=1e-12)
        assert 0.0 <= got <= 1.0


def test_evaluate_run_and_table() -> None:
    row = evaluate_run("hybrid", "rrf", {"q1": ["d1", "d2"], "q2": ["d4"]}, QRELS)
    assert row == pytest.approx(EvalRow("hybrid", "rrf", 1.0, 1.0, 1.0))
    table = format_table([row, ("bm25", None, 0.66169, 0.8759, 0.6312)]).splitlines()
    assert table == [
        "mode    fusion  nDCG@10  Recall@100  MRR@10",
        "hybrid  rrf      100.00      100.00  100.00",
        "bm25    -         66.17       87.59   63.12",
    ]


def write_beir(folder: Path) -> None:
    (folder / "qrels").mkdir(parents=True)
    corpus = [{"_id": "d1", "title": "Cats", "text": "Cats purr."}, {"_id": 2, "text": "No title here."}]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus) + "\n\n", encoding="utf-8")
    queries = [{"_id": "q1", "text": "purring?"}, {"_id": "q2", "text": "titles"}, {"_id": "q9", "text": "train"}]
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq2\t2\t2\r\nq2\td1\t0\r\n")
    (folder / "qrels" / "train.tsv").write_bytes(b"query-id\tcorpus-id\tscore\nq9\td1\t1\n")


def test_load_beir_with_crlf_qrels(tmp_path: Path) -> None:
    write_beir(tmp_path)
    data = load_beir(tmp_path)
    assert data == BeirData(
        corpus={"d1": ("Cats", "Cats purr."), "2": ("", "No title here.")},
        queries={"q1": "purring?", "q2": "titles"},  # q9 is judged only in train
        qrels={"q1": {"d1": 1}, "q2": {"2": 2, "d1": 0}},
    )
    assert data.documents() == {"d1": "Cats Cats purr.", "2": "No title here."}
    assert load_beir(tmp_path, "train").queries == {"q9": "train"}


def test_load_beir_errors_name_the_file(tmp_path: Path) -> None:
    write_beir(tmp_path)
    (tmp_path / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n", encoding="utf-8")
    with pytest.raises(CorruptFileError, match=r"dev\.tsv: line 2"):
        load_beir(tmp_path, "dev")
    (tmp_path / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq7\td1\t1\n", encoding="utf-8")
    with pytest.raises(CorruptFileError, match=r"queries\.jsonl.*q7"):
        load_beir(tmp_path, "dev")
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1"}\n{oops\n', encoding="utf-8")
    with pytest.raises(CorruptFileError, match=r"corpus\.jsonl: line 2"):
        load_beir(tmp_path)


def test_doctests() -> None:
    assert doctest.testmod(evaluation).failed == 0
