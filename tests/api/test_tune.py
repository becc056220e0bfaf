"""Tuning over REST and the CLI: `POST /v1/collections/{name}/tune` as a job, `PATCH /v1/collections/{name}`,
`retrieval tune` on a BEIR folder without a test split (the tuner never needs test judgments), and the table,
JSON and PNG outputs of `tune` and `eval`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.server import main as server_main
from tests.api._retrieval import assert_error, ingest
from tests.api._server import LiveServer
from tests.conftest import MINILM

TOPICS = ["protein folding", "volcano eruption", "stock market", "football match", "jazz music", "rain forest"]
SMALL = {"weights": [0.0, 1.0], "candidates": [20], "rerank": [5], "rerank_top": 1}


def _corpus() -> tuple[list[dict[str, Any]], dict[str, str], dict[str, dict[str, int]]]:
    docs, queries, qrels = [], {}, {}
    for i in range(30):
        topic = TOPICS[i % len(TOPICS)]
        docs.append({"id": f"d{i}", "text": f"{topic} study number {i} with details {i * 7}"})
        queries[f"q{i}"] = f"{topic} number {i}"
        qrels[f"q{i}"] = {f"d{i}": 1}
    return docs, queries, qrels


@pytest.fixture(scope="module")
def client(minilm_server: LiveServer) -> Iterator[httpx.Client]:
    with minilm_server.client() as c:
        resp = c.post("/v1/collections", json={"name": "tune-me", "dense_model": MINILM, "multivector_model": MINILM})
        assert resp.status_code == 201, resp.text
        assert resp.json()["modes"] == ["dense", "multivector", "bm25"] and resp.json()["candidates"] == 100
        ingest(c, "tune-me", _corpus()[0])
        yield c


def _wait(client: httpx.Client, job: str) -> dict[str, Any]:
    for _ in range(600):
        body = client.get(f"/v1/jobs/{job}").json()
        if body["state"] in ("done", "failed"):
            return dict(body)
        time.sleep(0.1)
    raise AssertionError("tune job did not finish")


def test_tune_job_reports_train_and_test_and_applies(client: httpx.Client) -> None:
    _, queries, qrels = _corpus()
    train, test = {q: qrels[q] for q in list(qrels)[:20]}, {q: qrels[q] for q in list(qrels)[20:]}
    body = {"queries": queries, "qrels": train, "test_qrels": test, "space": SMALL, "apply": True, "budget_s": 30}
    resp = client.post("/v1/collections/tune-me/tune", json=body)
    assert resp.status_code == 202, resp.text
    job = _wait(client, resp.json()["job"])
    assert job["state"] == "done" and job["done"] == job["total"] > 0, job
    report = job["tune"]
    assert report["train_queries"] == 20 and report["test_queries"] == 10 and report["applied"]
    assert report["choice"]["procedure"] in report["choice"]["estimates"]  # the rule was chosen on train
    names = [r["name"] for r in report["rows"]]
    assert names[:2] == ["chosen", "default"] and {"dense", "multivector", "bm25"} <= set(names)
    assert all("test" in r and 0 <= r["test"]["ndcg_at_10"] <= 1 for r in report["rows"])
    stored = client.get("/v1/collections/tune-me").json()
    assert stored["fusion"] == report["chosen"]["fusion"]
    assert stored["candidates"] == report["chosen"]["candidates"]
    assert stored["rerank_depth"] == report["chosen"]["rerank_depth"]


def test_patch_changes_search_defaults_without_reindexing(client: httpx.Client) -> None:
    before = client.get("/v1/collections/tune-me").json()
    fusion = {"method": "weighted", "k": 60, "weights": {"dense": 1.0, "multivector": 0.0, "bm25": 0.0}}
    resp = client.patch("/v1/collections/tune-me", json={"fusion": fusion, "candidates": 40, "rerank_depth": 0})
    assert resp.status_code == 200, resp.text
    after = resp.json()
    assert after["fusion"] == fusion and after["candidates"] == 40 and after["chunks"] == before["chunks"]
    hits = client.post("/v1/collections/tune-me/search", json={"query": "jazz music number 4"}).json()["data"]
    assert hits[0]["id"] == "d4" and set(hits[0]["scores"]) == {"dense"}  # weight 0: not searched
    two = {"method": "rrf", "k": 10, "weights": {"dense": 1.0, "multivector": 0.0, "bm25": 0.5}}
    assert client.patch("/v1/collections/tune-me", json={"fusion": two}).status_code == 200
    hits = client.post("/v1/collections/tune-me/search", json={"query": "jazz music number 4"}).json()["data"]
    assert hits[0]["id"] == "d4" and set(hits[0]["scores"]) == {"dense", "bm25", "fusion"}
    assert_error(client.patch("/v1/collections/tune-me", json={"rerank_depth": 500}), 400, "rerank_depth")
    assert_error(client.patch("/v1/collections/tune-me", json={"fusion": {"weights": {"sparse": 1}}}), 400)
    assert_error(client.patch("/v1/collections/tune-me", json={"nope": 1}), 400)
    assert_error(client.patch("/v1/collections/missing", json={}), 404)
    assert_error(client.post("/v1/collections/missing/tune", json={"queries": {}, "qrels": {}}), 404)
    assert_error(client.post("/v1/collections/tune-me/tune", json={"queries": {}, "qrels": {}, "budget_s": 0}), 400)
    resp = client.patch("/v1/collections/tune-me", json={"fusion": {"method": "rrf", "k": 60}, "candidates": 100})
    assert resp.status_code == 200


def _beir(folder: Path, splits: dict[str, list[str]]) -> Path:
    docs, queries, qrels = _corpus()
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": d["id"], "text": d["text"]}) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    for split, qids in splits.items():
        lines = [f"{q}\t{d}\t{g}" for q in qids for d, g in qrels[q].items()]
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(lines) + "\n")
    return folder


def test_cli_tunes_on_train_without_any_test_judgments(
    minilm_server: LiveServer, client: httpx.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The folder has no qrels/test.tsv: tuning runs on train alone and reports a cross-validated estimate."""
    beir = _beir(tmp_path / "beir", {"train": [f"q{i}" for i in range(30)]})
    out_json, chart = tmp_path / "tune.json", tmp_path / "tune.png"
    argv = ["tune", "tune-me", "--beir", str(beir), "--url", minilm_server.url, "--budget", "30", "--quiet"]
    argv += ["--candidates", "20", "--rerank", "--folds", "3", "--save-json", str(out_json), "--chart", str(chart)]
    assert server_main(argv) == 0
    out = capsys.readouterr().out
    assert "tuned on train (30 queries), no held-out split: cross-validated" in out
    assert "3-fold cross-validated nDCG@10" in out and "not applied" in out and "test nDCG@10" not in out
    assert "chosen by: " in out and "cross-validated nDCG@10 on the tuning split" in out
    saved = json.loads(out_json.read_text())
    assert (
        saved["cv"]["folds"] == 3 and saved.get("test_queries", 0) == 0 and all("test" not in r for r in saved["rows"])
    )
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_eval_writes_json_and_a_chart(
    minilm_server: LiveServer, client: httpx.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beir = _beir(tmp_path / "beir", {"test": [f"q{i}" for i in range(10)]})
    out_json, chart = tmp_path / "eval.json", tmp_path / "eval.png"
    argv = ["eval", "tune-me", "--beir", str(beir), "--url", minilm_server.url]
    assert server_main([*argv, "--save-json", str(out_json), "--chart", str(chart)]) == 0
    assert "nDCG@10" in capsys.readouterr().out
    rows = json.loads(out_json.read_text())["data"]
    assert {r["mode"] for r in rows} == {"dense", "multivector", "bm25", "hybrid"}
    assert chart.read_bytes()[:4] == b"\x89PNG"


def test_judgments_about_documents_the_collection_lacks_are_warned_about(
    minilm_server: LiveServer, client: httpx.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """eval and tune on a collection that holds none (or only some) of the judged documents say so."""
    _, queries, qrels = _corpus()
    elsewhere = {q: {f"other-{d}": g for d, g in grades.items()} for q, grades in qrels.items()}
    body = {"queries": queries, "qrels": elsewhere}
    answer = client.post("/v1/collections/tune-me/evaluate", json=body).json()
    assert all(r["ndcg_at_10"] == 0 for r in answer["data"])
    (warning,) = answer["warnings"]
    assert warning.startswith("none of the 30 judged documents is in collection `tune-me`: every figure is 0")
    text = client.post("/v1/collections/tune-me/evaluate", json=body, headers={"Accept": "text/plain"}).text
    assert text.rstrip().endswith(warning)
    half = {q: (elsewhere if i % 2 else qrels)[q] for i, q in enumerate(qrels)}
    partly = client.post("/v1/collections/tune-me/evaluate", json={"queries": queries, "qrels": half}).json()
    assert partly["warnings"] == ["15 of the 30 judged documents are not in collection `tune-me`: never found"]
    assert (
        client.post("/v1/collections/tune-me/evaluate", json={"queries": queries, "qrels": qrels}).json()["warnings"]
        == []
    )
    beir = _beir(tmp_path / "beir", {"train": [f"q{i}" for i in range(30)]})
    for q, grades in elsewhere.items():  # the folder's judgments name other documents
        qrels[q] = grades
    (beir / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\t{d}\t{g}\n" for q, gs in elsewhere.items() for d, g in gs.items())
    )
    argv = ["--beir", str(beir), "--url", minilm_server.url, "--split", "train"]
    assert server_main(["eval", "tune-me", *argv]) == 0
    assert "warning: none of the 30 judged documents is in collection `tune-me`" in capsys.readouterr().err
    assert server_main(["tune", "tune-me", *argv, "--budget", "5", "--quiet", "--candidates", "20", "--rerank"]) == 0
    assert "warning: none of the 30 judged documents (tuning split)" in capsys.readouterr().err
