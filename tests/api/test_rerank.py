"""`/rerank` (+ `/v1/rerank`, `/v2/rerank`) end to end: ordering, top_n, document echo, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from tests.api._server import live_server

Q = "what is the capital of france"
D = [
    "paris is the capital of france",
    "spiders have eight legs",
    "bananas are yellow",
    "france borders spain",
]


@pytest.fixture(scope="module")
def client(tiny_store: Callable[[str], Path]) -> Iterator[httpx.Client]:
    specs = [
        ModelSpec(source=str(tiny_store("bert_ce")), name="ce"),
        ModelSpec(source=str(tiny_store("bert_st_mean")), name="emb"),
        ModelSpec(source=str(tiny_store("reward_remote")), name="reward", trust_remote_code=True),
    ]
    registry = ModelRegistry([Engine.load(s) for s in specs])
    with live_server(registry) as live, live.client() as c:
        yield c
    registry.close()


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank", "/v2/rerank"])
@pytest.mark.parametrize("model", ["ce", "emb"])
def test_results_are_sorted_scores_of_each_document(client: httpx.Client, path: str, model: str) -> None:
    body = client.post(path, json={"model": model, "query": Q, "documents": D}).json()
    scores = client.post("/score", json={"model": model, "queries": Q, "documents": D}).json()["data"]
    assert body["id"].startswith("rerank-") and body["model"] == model
    results = body["results"]
    assert sorted(r["index"] for r in results) == [0, 1, 2, 3]
    assert [r["relevance_score"] for r in results] == sorted((r["relevance_score"] for r in results), reverse=True)
    for r in results:
        assert r["relevance_score"] == pytest.approx(scores[r["index"]]["score"], abs=1e-6)
        assert r["document"] == {"text": D[r["index"]], "multi_modal": None}
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0


def test_top_n_and_return_documents(client: httpx.Client) -> None:
    full = client.post("/rerank", json={"model": "ce", "query": Q, "documents": D, "top_n": 0}).json()["results"]
    top = client.post("/rerank", json={"model": "ce", "query": Q, "documents": D, "top_n": 2}).json()["results"]
    assert len(full) == 4 and top == full[:2]
    bare = client.post("/v2/rerank", json={"model": "ce", "query": Q, "documents": D, "return_documents": False})
    assert all(set(r) == {"index", "relevance_score"} for r in bare.json()["results"])
    parts = {"content": [{"type": "text", "text": D[0]}]}
    echoed = client.post("/rerank", json={"model": "ce", "query": Q, "documents": [parts]}).json()["results"]
    assert echoed[0]["document"] == {"text": None, "multi_modal": parts["content"]}


def _error(resp: httpx.Response, status: int, contains: str) -> None:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == status and contains in err["message"], err


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"query": Q, "documents": []}, 400, "At least one text_pair element must be given"),
        ({"documents": D}, 400, "query"),
        ({"query": Q}, 400, "documents"),
        ({"query": [Q, Q], "documents": D}, 400, "validation error"),
        ({"query": Q, "documents": D, "top_n": -1}, 400, "top_n"),
        ({"query": Q, "documents": ["word " * 200]}, 400, "maximum context length"),
        ({"model": "reward", "query": Q, "documents": D}, 501, "The model does not support Score API"),
    ],
)
def test_errors(client: httpx.Client, body: dict, status: int, message: str) -> None:
    _error(client.post("/rerank", json={"model": "ce", **body}), status, message)
