"""jina-embeddings-v3 and jina-colbert-v2 served end to end: Matryoshka, the `adapter` extension, MaxSim."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import torch
from transformers import XLMRobertaTokenizer

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from tests.api._server import LiveServer, live_server
from tests.encoder.jina_reference import mean_embedding, reference_weights
from tests.fixtures.jina import ADAPTERS, INSTRUCTIONS, point_auto_map_at_hub

V3, COLBERT = "jinaai/jina-embeddings-v3", "jinaai/jina-colbert-v2"
TEXTS = ["Follow the white rabbit.", "what is the capital of france", "bananas are yellow"]
DOCS = ["paris is the capital of france", "spiders have eight legs", "bananas are yellow"]


@pytest.fixture(scope="module")
def server(tiny_store: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    v3 = tmp_path_factory.mktemp("hub") / "jina-embeddings-v3"
    shutil.copytree(tiny_store("jina_v3"), v3)
    point_auto_map_at_hub(v3)  # as published: AutoConfig in another repository, unreachable here
    specs = [
        ModelSpec(source=str(v3), name=V3, trust_remote_code=True),
        ModelSpec(
            source=str(tiny_store("jina_colbert_v2")),
            name=COLBERT,
            trust_remote_code=True,
            hf_overrides={"architectures": ["ColBERTJinaRobertaModel"]},
        ),
        ModelSpec(source=str(tiny_store("bert_st_mean")), name="plain"),
    ]
    registry = ModelRegistry([Engine.load(s) for s in specs])
    with live_server(registry) as live:
        yield live
    registry.close()


def _reference(folder: Path, texts: list[str], adapter: str | None, dims: int | None) -> np.ndarray:
    index = len(ADAPTERS) - 1 if adapter is None else ADAPTERS.index(adapter)
    prompt = INSTRUCTIONS[adapter] if adapter else ""
    weights = reference_weights(folder, index)
    ids = XLMRobertaTokenizer.from_pretrained(folder)([prompt + t for t in texts])["input_ids"]
    return torch.stack([mean_embedding(folder, weights, list(i), dims) for i in ids]).numpy()


def _error(resp: httpx.Response, contains: str) -> dict:
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["type"] == "BadRequestError" and err["code"] == 400 and contains in err["message"]
    return err


def test_seed_example_dimensions_32_through_the_openai_client(server: LiveServer) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    got = client.embeddings.create(model=V3, input=TEXTS, dimensions=32, encoding_format="float")
    vectors = np.array([d.embedding for d in got.data])
    assert vectors.shape == (3, 32)
    want = _reference(server.registry.get(V3).info.root, TEXTS, None, 32)
    assert np.abs(vectors - want).max() < 2e-5


@pytest.mark.parametrize("adapter", ["retrieval.query", "retrieval.passage", "classification"])
def test_adapter_field_on_embeddings_and_pooling(server: LiveServer, adapter: str) -> None:
    with server.client() as http:
        body = {"model": V3, "input": TEXTS, "adapter": adapter, "dimensions": 16}
        emb = http.post("/v1/embeddings", json=body).json()["data"]
        pooled = http.post("/pooling", json={**body, "task": "embed"}).json()["data"]
    got = np.array([d["embedding"] for d in emb])
    assert np.allclose(got, np.array([d["data"] for d in pooled]), atol=1e-6)
    want = _reference(server.registry.get(V3).info.root, TEXTS, adapter, 16)
    assert np.abs(got - want).max() < 2e-5


def test_concurrent_requests_with_different_adapters_get_their_own(server: LiveServer) -> None:
    choices = [None, *ADAPTERS] * 3

    def one(adapter: str | None) -> list[float]:
        body = {"model": V3, "input": TEXTS[0]} | ({"adapter": adapter} if adapter else {})
        with server.client() as http:
            return http.post("/v1/embeddings", json=body).json()["data"][0]["embedding"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, choices))
    for adapter, got in zip(choices, results, strict=True):
        assert np.allclose(got, one(adapter), atol=1e-5)
    assert not np.allclose(results[0], results[1], atol=1e-3)


def test_adapter_errors_are_400(server: LiveServer) -> None:
    with server.client() as http:
        err = _error(http.post("/v1/embeddings", json={"model": V3, "input": "x", "adapter": "nope"}), "nope")
        assert err["param"] == "adapter" and ", ".join(ADAPTERS) in err["message"]
        _error(http.post("/pooling", json={"model": V3, "input": "x", "adapter": "nope"}), ", ".join(ADAPTERS))
        _error(http.post("/v1/embeddings", json={"model": "plain", "input": "x", "adapter": ADAPTERS[0]}), "no LoRA")
        _error(
            http.post("/v1/embeddings", json={"model": V3, "input": "x", "dimensions": 12}),
            f'Model "{V3}" only supports [8, 16, 32] matryoshka dimensions',
        )


def _tokens(http: httpx.Client, texts: list[str], mode: str, dims: int | None = None) -> list[np.ndarray]:
    body = {"model": COLBERT, "input": texts, "task": "token_embed", "embedding_mode": mode, "dimensions": dims}
    resp = http.post("/pooling", json=body)
    assert resp.status_code == 200, resp.text
    return [np.array(d["data"]) for d in resp.json()["data"]]


def _maxsim(q: np.ndarray, d: np.ndarray) -> float:
    return float(sum(max(float(qi @ dj) for dj in d) for qi in q))


def test_colbert_token_embed_score_and_rerank_use_maxsim(server: LiveServer) -> None:
    with server.client() as http:
        (query,) = _tokens(http, [TEXTS[1]], "query")
        docs = _tokens(http, DOCS, "document")
        assert query.shape == (32, 128) and all(d.shape[1] == 128 for d in docs)
        assert np.allclose(np.linalg.norm(query, axis=1), 1, atol=1e-5)
        want = [_maxsim(query, d) for d in docs]
        score = http.post("/score", json={"model": COLBERT, "queries": TEXTS[1], "documents": DOCS}).json()
        assert [s["score"] for s in score["data"]] == pytest.approx(want, abs=1e-4)
        rerank = http.post("/rerank", json={"model": COLBERT, "query": TEXTS[1], "documents": DOCS}).json()
        assert [r["index"] for r in rerank["results"]] == list(np.argsort(want)[::-1])
        (small,) = _tokens(http, [TEXTS[1]], "query", 64)
        trimmed = query[:, :64] / np.linalg.norm(query[:, :64], axis=1, keepdims=True)
        assert np.allclose(small, trimmed, atol=1e-5)
        bad = {"model": COLBERT, "input": "x", "task": "token_embed", "dimensions": 100}
        _error(http.post("/pooling", json=bad), "[128, 96, 64]")
