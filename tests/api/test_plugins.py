"""IO-processor plugins: discovery by entry point, the shipped BGE-M3 plugin, and the 400s around them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from api.app import _plugin
from encoder import M3_TASK, Engine, ModelSpec, PoolingParams
from retrieval import ModelRegistry, ServiceConfig
from retrieval.models.serving.plugins import PluginError, available_plugins, load_plugin
from tests.api._server import LiveServer, live_server

M3 = {"architectures": ["BgeM3EmbeddingModel"]}


@pytest.fixture(scope="module")
def m3_registry(tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    registry = ModelRegistry([Engine.load(ModelSpec(source=str(tiny_store("bge_m3")), name="m3", hf_overrides=M3))])
    yield registry
    registry.close()


@pytest.fixture(scope="module")
def m3_server(m3_registry: ModelRegistry) -> Iterator[LiveServer]:
    with live_server(m3_registry, ServiceConfig(io_processor_plugin="bge_m3_sparse")) as server:
        yield server


def test_shipped_plugin_is_discoverable() -> None:
    assert "bge_m3_sparse" in available_plugins()
    with pytest.raises(PluginError, match="no IO processor plugin named 'nope'"):
        load_plugin("nope")


def test_plugin_refuses_a_model_it_cannot_serve(minilm_registry: ModelRegistry) -> None:
    with pytest.raises(PluginError, match="needs a BGE-M3 model"):
        _plugin(ServiceConfig(io_processor_plugin="bge_m3_sparse"), minilm_registry)


def test_dense_and_sparse_match_the_engine(m3_server: LiveServer, m3_registry: ModelRegistry) -> None:
    texts = ["what is bge m3", "definition of bm25"]
    with m3_server.client() as http:
        resp = http.post(
            "/pooling",
            json={
                "task": "plugin",
                "request_id": "r1",
                "data": {"input": texts, "embed_task": "dense&sparse", "return_tokens": True},
            },
        )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["request_id"] == "r1" and isinstance(body["created_at"], int)
    engine = m3_registry.get("m3")
    expected = engine.encode_sync(texts, PoolingParams(task=M3_TASK)).m3
    dense = engine.encode_sync(texts, PoolingParams(task="embed")).outputs
    for item, exp, vec in zip(body["data"], expected, dense, strict=True):
        assert item["object"] == "sparse&dense"
        assert item["dense_embedding"] == pytest.approx(vec.tolist(), abs=1e-6)
        got = {e["token_id"]: e["weight"] for e in item["sparse_embedding"]}
        assert got == pytest.approx(exp.sparse, abs=1e-6)
        weights = [e["weight"] for e in item["sparse_embedding"]]
        assert weights == sorted(weights, reverse=True)
        tokens = engine.token_strings(list(got))
        assert [e["token"] for e in item["sparse_embedding"]] == tokens


def test_single_representation_tasks(m3_server: LiveServer) -> None:
    with m3_server.client() as http:
        dense = http.post("/pooling", json={"task": "plugin", "data": {"input": "x y", "embed_task": "dense"}}).json()
        sparse = http.post("/pooling", json={"task": "plugin", "data": {"input": "x y", "embed_task": "sparse"}}).json()
    assert set(dense["data"][0]) == {"index", "object", "dense_embedding"}
    assert set(sparse["data"][0]) == {"index", "object", "sparse_embedding"}
    assert all(e["token"] is None for e in sparse["data"][0]["sparse_embedding"])


@pytest.mark.parametrize(
    ("data", "param"),
    [
        (None, "data"),
        ("text", "data"),
        ({"input": ""}, "data.input"),
        ({"input": []}, "data.input"),
        ({"input": "x", "embed_task": "colbert"}, "data.embed_task"),
    ],
)
def test_bad_plugin_data_is_400(m3_server: LiveServer, data: object, param: str) -> None:
    with m3_server.client() as http:
        resp = http.post("/pooling", json={"task": "plugin", "data": data})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == param


def test_without_a_plugin_the_request_is_a_clear_400(minilm_server: LiveServer) -> None:
    with minilm_server.client() as http:
        resp = http.post("/pooling", json={"task": "plugin", "data": {"input": "x"}})
    assert resp.status_code == 400
    assert "--io-processor-plugin" in resp.json()["error"]["message"]
