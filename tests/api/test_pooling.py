"""`/pooling` end to end on a live server: vLLM's shape, ColBERT modes, BGE-M3 tasks, errors (never a 500)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from encoder import M3_TASK, Engine, ModelSpec, PoolingParams
from retrieval import ModelRegistry
from tests.api._server import LiveServer, live_server

TEXTS = ["What is ColBERT, really?", "late interaction; many vectors.", "short"]


@pytest.fixture(scope="module")
def server(tiny_store: Callable[[str], Path]) -> Iterator[LiveServer]:
    specs = [
        ModelSpec(source=str(tiny_store("hf_colbert")), name="colbert"),
        ModelSpec(
            source=str(tiny_store("bge_m3")),
            name="m3",
            hf_overrides={"architectures": ["BgeM3EmbeddingModel"]},
        ),
        ModelSpec(source=str(tiny_store("bert_st_mean")), name="dense"),
        ModelSpec(source=str(tiny_store("bert_cls3")), name="cls"),
    ]
    registry = ModelRegistry([Engine.load(s) for s in specs])
    with live_server(registry) as live:
        yield live
    registry.close()


def _post(server: LiveServer, body: dict[str, Any]) -> Any:
    with server.client() as http:
        return http.post("/pooling", json=body)


def _ok(server: LiveServer, body: dict[str, Any]) -> dict[str, Any]:
    resp = _post(server, body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["id"].startswith("pool-") and out["object"] == "list" and out["model"] == body["model"]
    assert [d["index"] for d in out["data"]] == list(range(len(out["data"])))
    assert all(d["object"] == "pooling" for d in out["data"])
    assert out["usage"]["prompt_tokens"] == out["usage"]["total_tokens"] > 0
    return out


def _engine(server: LiveServer, name: str) -> Engine:
    return server.registry.get(name)


@pytest.mark.parametrize("mode", ["query", "document", None])
def test_colbert_token_embed_modes(server: LiveServer, mode: str | None) -> None:
    body = {"model": "colbert", "input": TEXTS, "task": "token_embed", "embedding_mode": mode}
    out = _ok(server, body)
    want = _engine(server, "colbert").encode_sync(TEXTS, PoolingParams(task="token_embed", embedding_mode=mode))
    for item, vecs in zip(out["data"], want.outputs, strict=True):
        np.testing.assert_allclose(np.array(item["data"]), vecs.numpy(), atol=1e-5)
    if mode == "query":
        assert {len(d["data"]) for d in out["data"]} == {12}


def test_absent_task_is_the_models_default(server: LiveServer) -> None:
    colbert = _ok(server, {"model": "colbert", "input": "hello there"})
    assert np.array(colbert["data"][0]["data"]).ndim == 2  # token_embed: list[list[float]]
    dense = _ok(server, {"model": "dense", "input": "hello there"})
    assert np.array(dense["data"][0]["data"]).shape == (32,)  # embed
    probs = _ok(server, {"model": "cls", "input": "hello there", "task": "classify"})["data"][0]["data"]
    assert len(probs) == 3 and abs(sum(probs) - 1) < 1e-5


def test_base64_and_bytes_agree_with_floats(server: LiveServer) -> None:
    body = {"model": "colbert", "input": TEXTS[:2], "task": "token_embed", "embedding_mode": "document"}
    floats = [np.array(d["data"], np.float32) for d in _ok(server, body)["data"]]
    b64 = _ok(server, {**body, "encoding_format": "base64"})["data"]
    for item, ref in zip(b64, floats, strict=True):
        assert np.array_equal(np.frombuffer(base64.b64decode(item["data"]), np.float32).reshape(ref.shape), ref)
    raw = _post(server, {**body, "encoding_format": "bytes"})
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/octet-stream"
    for item, ref in zip(json.loads(raw.headers["metadata"])["data"], floats, strict=True):
        assert item["shape"] == list(ref.shape)
        assert np.array_equal(np.frombuffer(raw.content[item["start"] : item["end"]], np.float32), ref.ravel())


def test_bge_m3_tasks(server: LiveServer) -> None:
    engine = _engine(server, "m3")
    for task in ("embed", "token_embed", "token_classify"):
        out = _ok(server, {"model": "m3", "input": TEXTS, "task": task})
        want = engine.encode_sync(TEXTS, PoolingParams(task=task)).outputs  # type: ignore[arg-type]
        for item, ref in zip(out["data"], want, strict=True):
            np.testing.assert_allclose(np.array(item["data"]), ref.numpy(), atol=1e-5)


def test_bge_m3_all_three_in_one_call(server: LiveServer) -> None:
    out = _ok(server, {"model": "m3", "input": TEXTS, "task": M3_TASK})
    want = _engine(server, "m3").encode_sync(TEXTS, PoolingParams(task=M3_TASK)).m3
    for item, ref in zip(out["data"], want, strict=True):
        data = item["data"]
        assert set(data) == {"dense", "colbert", "sparse"}
        np.testing.assert_allclose(np.array(data["dense"]), ref.dense, atol=1e-5)
        np.testing.assert_allclose(np.array(data["colbert"]), ref.colbert, atol=1e-5)
        assert {int(k): v for k, v in data["sparse"].items()} == pytest.approx(ref.sparse)
    b64 = _ok(server, {"model": "m3", "input": TEXTS[:1], "task": M3_TASK, "encoding_format": "base64"})
    dense = np.frombuffer(base64.b64decode(b64["data"][0]["data"]["dense"]), np.float32)
    assert np.allclose(dense, want[0].dense, atol=1e-6)


def test_concurrent_query_and_document_requests(server: LiveServer) -> None:
    bodies = [
        {"model": "colbert", "input": [t], "task": "token_embed", "embedding_mode": m}
        for t in TEXTS
        for m in ("query", "document")
    ]
    sequential = [_ok(server, b)["data"] for b in bodies]
    with ThreadPoolExecutor(6) as pool:
        parallel = list(pool.map(lambda b: _ok(server, b)["data"], bodies))
    for a, b in zip(sequential, parallel, strict=True):
        np.testing.assert_allclose(np.array(a[0]["data"]), np.array(b[0]["data"]), atol=1e-5)


@pytest.mark.parametrize(
    ("body", "status", "param", "text"),
    [
        (
            {"model": "colbert", "task": "plugin", "data": {"input": "x"}},
            400,
            "task",
            "no IO processor plugin",
        ),
        (
            {"model": "dense", "input": "x", "task": "token_embed", "embedding_mode": "query"},
            400,
            "embedding_mode",
            "late-interaction",
        ),
        ({"model": "colbert", "input": "x", "task": "encode"}, 400, "task", "was removed"),
        ({"model": "colbert", "input": "x", "task": "nope"}, 400, "task", "Unknown task"),
        ({"model": "dense", "input": "x", "task": "embed&token_embed"}, 400, "task", "internal to collections"),
        ({"model": "colbert", "input": "x", "task": M3_TASK}, 501, None, "does not support"),
        (
            {"model": "m3", "input": "x", "task": M3_TASK, "encoding_format": "bytes"},
            400,
            "encoding_format",
            "bytes",
        ),
        ({"model": "m3", "input": "x", "dimensions": 8}, 400, "dimensions", "matryoshka"),
        (
            {"model": "colbert", "messages": [{"role": "user", "content": "x"}]},
            400,
            "messages",
            "chat template",
        ),
        ({"model": "colbert"}, 400, "input", "input"),
        ({"model": "missing", "input": "x"}, 404, "model", "does not exist"),
    ],
)
def test_errors_are_vllm_shaped(
    server: LiveServer, body: dict[str, Any], status: int, param: str | None, text: str
) -> None:
    resp = _post(server, body)
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == status and err["param"] == param and text in err["message"]


def test_outputs_are_normalised_unless_activation_is_off(server: LiveServer) -> None:
    body = {"model": "colbert", "input": "hello", "task": "token_embed", "embedding_mode": "document"}
    norms = np.linalg.norm(np.array(_ok(server, body)["data"][0]["data"]), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)
    raw = np.array(_ok(server, {**body, "use_activation": False})["data"][0]["data"])
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
