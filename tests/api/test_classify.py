"""`/classify` end to end: labels from id2label, activations by problem_type, decoder classifiers, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from tests.api._server import live_server
from tests.fixtures.classifiers import LABELS_3

TEXTS = ["a happy little sentence", "sad", "neither here nor there"]
MODELS = {
    "cls3": "bert_cls3",
    "reg": "bert_regression",
    "multi": "bert_multilabel",
    "ce": "bert_ce",
    "qwen": "qwen2_cls_left",
    "emb": "bert_st_mean",
}


@pytest.fixture(scope="module")
def client(tiny_store: Callable[[str], Path]) -> Iterator[httpx.Client]:
    registry = ModelRegistry([Engine.load(ModelSpec(source=str(tiny_store(k)), name=n)) for n, k in MODELS.items()])
    with live_server(registry) as live, live.client() as c:
        yield c
    registry.close()


def _classify(client: httpx.Client, **body: object) -> dict:
    resp = client.post("/classify", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_softmax_classifier_with_labels(client: httpx.Client) -> None:
    body = _classify(client, model="cls3", input=TEXTS)
    assert body["object"] == "list" and body["id"].startswith("classify-") and body["model"] == "cls3"
    assert body["usage"]["prompt_tokens"] > 0
    for i, item in enumerate(body["data"]):
        probs = np.array(item["probs"])
        assert item["index"] == i and item["num_classes"] == 3
        assert probs.sum() == pytest.approx(1.0, abs=1e-6)
        assert item["label"] == LABELS_3[int(probs.argmax())]
    raw = _classify(client, model="cls3", input=TEXTS[0], use_activation=False)["data"][0]["probs"]
    expected = np.exp(raw) / np.exp(raw).sum()
    assert body["data"][0]["probs"] == pytest.approx(expected.tolist(), abs=1e-6)


def test_activation_follows_problem_type(client: httpx.Client) -> None:
    for model, fn in [
        ("reg", lambda x: x),
        ("multi", lambda x: 1 / (1 + np.exp(-x))),
        ("ce", lambda x: 1 / (1 + np.exp(-x))),
    ]:
        probs = _classify(client, model=model, input=TEXTS[1])["data"][0]["probs"]
        raw = _classify(client, model=model, input=TEXTS[1], use_activation=False)["data"][0]["probs"]
        assert probs == pytest.approx(fn(np.array(raw)).tolist(), abs=1e-6)
    assert _classify(client, model="ce", input="x")["data"][0]["label"] == "LABEL_0"


def test_decoder_classifier_batch_equals_single(client: httpx.Client) -> None:
    batch = _classify(client, model="qwen", input=TEXTS)["data"]
    for i, text in enumerate(TEXTS):
        single = _classify(client, model="qwen", input=text)["data"][0]
        assert batch[i]["probs"] == pytest.approx(single["probs"], abs=1e-6)


def test_token_id_input(client: httpx.Client) -> None:
    ids = client.post("/tokenize", json={"model": "cls3", "prompt": TEXTS[0]}).json()["tokens"]
    by_ids = _classify(client, model="cls3", input=ids, add_special_tokens=False)["data"][0]["probs"]
    assert by_ids == pytest.approx(_classify(client, model="cls3", input=TEXTS[0])["data"][0]["probs"], abs=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "emb", "input": "x"}, 501, "The model does not support Classification API"),
        ({"input": []}, 400, "must not be empty"),
        ({"input": [""]}, 400, "empty string"),
        ({}, 400, "input"),
        ({"input": {"a": 1}}, 400, "input"),
        ({"input": "word " * 200}, 400, "maximum context length is 128 tokens"),
        ({"input": "x", "truncate_prompt_tokens": 1000}, 400, "truncate_prompt_tokens"),
        ({"model": "missing", "input": "x"}, 404, "does not exist"),
    ],
)
def test_errors(client: httpx.Client, body: dict, status: int, message: str) -> None:
    resp = client.post("/classify", json={"model": "cls3", **body})
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == status and message in err["message"], err
