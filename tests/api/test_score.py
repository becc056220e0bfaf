"""`/score` end to end on a live server: four pair spellings, model kinds, and every error case."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from tests.api._server import LiveServer, live_server

Q = "what is the capital of france"
D = ["paris is the capital of france", "spiders have eight legs", "bananas are yellow"]
MODELS = {"ce": "bert_ce", "xlmr": "xlmr_ce", "cls3": "bert_cls3", "emb": "bert_st_mean"}


@pytest.fixture(scope="module")
def server(tiny_store: Callable[[str], Path]) -> Iterator[LiveServer]:
    registry = ModelRegistry([Engine.load(ModelSpec(source=str(tiny_store(k)), name=n)) for n, k in MODELS.items()])
    with live_server(registry) as live:
        yield live
    registry.close()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _error(resp: httpx.Response, status: int, contains: str) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == status and contains in err["message"], err
    return err  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("first", "second"),
    [("queries", "documents"), ("queries", "items"), ("data_1", "data_2"), ("text_1", "text_2")],
)
def test_every_pair_spelling_scores_the_same(client: httpx.Client, first: str, second: str) -> None:
    body = client.post("/score", json={"model": "ce", first: Q, second: D}).json()
    ref = client.post("/score", json={"model": "ce", "queries": [Q] * 3, "documents": D}).json()
    assert body["object"] == "list" and body["model"] == "ce" and body["id"].startswith("score-")
    assert [d["index"] for d in body["data"]] == [0, 1, 2] and {d["object"] for d in body["data"]} == {"score"}
    assert [d["score"] for d in body["data"]] == pytest.approx([d["score"] for d in ref["data"]], abs=1e-6)
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0


@pytest.mark.parametrize("model", ["ce", "xlmr"])
def test_scores_equal_sentence_transformers(
    client: httpx.Client, server: LiveServer, model: str, tiny_store: Callable[[str], Path]
) -> None:
    from sentence_transformers import CrossEncoder

    got = client.post("/v1/score", json={"model": model, "text_1": Q, "text_2": D}).json()
    ref = CrossEncoder(str(tiny_store(MODELS[model])), device="cpu").predict([(Q, d) for d in D])
    assert np.abs(np.array([d["score"] for d in got["data"]]) - ref).max() <= 1e-5
    raw = client.post("/score", json={"model": model, "queries": Q, "documents": D[0], "use_activation": False})
    assert 1 / (1 + np.exp(-raw.json()["data"][0]["score"])) == pytest.approx(ref[0], abs=1e-5)


def test_embedding_model_scores_cosine(client: httpx.Client) -> None:
    body = client.post("/score", json={"model": "emb", "queries": Q, "documents": [Q, *D]}).json()
    scores = [d["score"] for d in body["data"]]
    assert scores[0] == pytest.approx(1.0, abs=1e-5) and all(abs(s) <= 1 + 1e-6 for s in scores)


def test_text_content_parts_are_accepted(client: httpx.Client) -> None:
    part = {"content": [{"type": "text", "text": Q}]}
    a = client.post("/score", json={"model": "ce", "queries": part, "documents": D[:1]}).json()
    b = client.post("/score", json={"model": "ce", "queries": Q, "documents": D[:1]}).json()
    assert a["data"][0]["score"] == pytest.approx(b["data"][0]["score"], abs=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"queries": [Q, Q], "documents": D}, 400, "Input lengths must be either 1:1, 1:N or N:N"),
        ({"queries": [], "documents": D}, 400, "At least one text element must be given"),
        ({"queries": Q, "documents": []}, 400, "At least one text_pair element must be given"),
        ({"queries": Q}, 400, "Give both sides of the pairs"),
        ({"documents": D}, 400, "Give both sides of the pairs"),
        ({"queries": 3, "documents": D}, 400, "validation error"),
        ({"queries": Q, "documents": ["word " * 200]}, 400, "maximum context length is 128 tokens"),
        ({"queries": Q, "documents": [""]}, 400, "empty"),
        (
            {"queries": {"content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}, "documents": D},
            400,
            "MultiModalParam is not supported for BertForSequenceClassification",
        ),
        ({"queries": Q, "documents": D, "normalize": True}, 400, "Parameter `normalize` was removed"),
        ({"model": "cls3", "queries": Q, "documents": D}, 501, "The model does not support Score API"),
        ({"model": "nope", "queries": Q, "documents": D}, 404, "does not exist"),
    ],
)
def test_errors(client: httpx.Client, body: dict, status: int, message: str) -> None:
    _error(client.post("/score", json={"model": "ce", **body}), status, message)


def test_truncation_makes_long_input_scoreable(client: httpx.Client) -> None:
    body = {"model": "ce", "queries": Q, "documents": ["word " * 200], "truncate_prompt_tokens": -1}
    resp = client.post("/score", json=body)
    assert resp.status_code == 200 and resp.json()["usage"]["prompt_tokens"] == 128
