"""Image inputs at the vLLM-compatible endpoints with a tiny ColQwen3 model; text-only models still refuse them."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from tests.api._server import LiveServer, live_server


def _url(seed: int) -> str:
    pixels = (np.random.RandomState(seed).rand(40, 56, 3) * 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _content(seed: int) -> dict:
    return {"content": [{"type": "image_url", "image_url": {"url": _url(seed)}}, {"type": "text", "text": "page"}]}


@pytest.fixture(scope="module")
def client(tiny_store: Callable[[str], Path]) -> Iterator[httpx.Client]:
    registry = ModelRegistry(
        [
            Engine.load(ModelSpec(source=str(tiny_store("colqwen3_colpali")), name="colqwen")),
            Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="bert")),
        ]
    )
    server: LiveServer
    with live_server(registry) as server, server.client() as c:
        yield c
    registry.close()


def test_pooling_messages_with_an_image(client: httpx.Client) -> None:
    messages = [{"role": "user", **_content(1)}]
    body = client.post("/pooling", json={"model": "colqwen", "messages": messages, "task": "token_embed"})
    assert body.status_code == 200, body.text
    vectors = np.array(body.json()["data"][0]["data"])
    assert vectors.shape[1] == 16 and vectors.shape[0] > 20
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    prompted = client.post(
        "/pooling", json={"model": "colqwen", "messages": messages, "task": "token_embed", "prompt_name": "document"}
    ).json()
    assert len(prompted["data"][0]["data"]) > len(vectors)  # the family's image template was applied on request


def test_score_and_rerank_with_content_items(client: httpx.Client) -> None:
    docs = [_content(s) for s in (20, 21, 22)]
    score = client.post("/score", json={"model": "colqwen", "data_1": _content(21), "data_2": docs})
    assert score.status_code == 200, score.text
    scores = [d["score"] for d in score.json()["data"]]
    assert int(np.argmax(scores)) == 1
    same = client.post("/score", json={"model": "colqwen", "queries": _content(21), "documents": docs}).json()
    assert [d["score"] for d in same["data"]] == pytest.approx(scores, rel=1e-5)
    rerank = client.post("/rerank", json={"model": "colqwen", "query": _content(22), "documents": docs}).json()
    top = rerank["results"][0]
    assert top["index"] == 2 and top["document"]["multi_modal"] == docs[2]["content"]
    assert top["document"]["text"] is None


def test_embeddings_messages_and_text_only_models(client: httpx.Client) -> None:
    messages = [{"role": "user", **_content(1)}]
    no_embed = client.post("/v1/embeddings", json={"model": "colqwen", "messages": messages})
    assert no_embed.status_code >= 400 and "Embeddings API" in no_embed.json()["error"]["message"]
    for path, body in (
        ("/score", {"queries": _content(1), "documents": "text"}),
        ("/rerank", {"query": "text", "documents": [_content(1)]}),
    ):
        resp = client.post(path, json={"model": "bert", **body})
        assert resp.status_code == 400
        assert "MultiModalParam is not supported for BertModel" in resp.json()["error"]["message"]
    chat = client.post("/v1/embeddings", json={"model": "bert", "messages": messages})
    assert chat.status_code == 400 and "only text parts" in chat.json()["error"]["message"]
