"""A sharded collection through a live server on the session's Ray cluster: create with `shards`, per-shard
status, search answers naming the shards, a killed shard answers 503 with Retry-After (or `partial` when asked),
and `/metrics` per shard."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import ray

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry, ServiceConfig
from retrieval.distributed.shards import RayShardBackend
from tests.api._server import LiveServer, live_server


@pytest.fixture(scope="module")
def server(ray_address: str, tiny_store: Callable[[str], Path]) -> Iterator[LiveServer]:
    registry = ModelRegistry([Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="dense"))])
    with live_server(registry, ServiceConfig(ray=ray_address, shard_timeout_s=5)) as live:
        yield live
    registry.close()


def test_a_sharded_collection_over_rest(server: LiveServer) -> None:
    with server.client() as http:
        made = http.post("/v1/collections", json={"name": "sh", "dense_model": "dense", "shards": 3})
        assert made.status_code in (200, 201), made.text
        assert made.json()["shards"] == 3 and len(made.json()["shard_status"]) == 3
        docs = [{"id": f"d{i}", "text": f"note {i} about {'tea' if i % 2 else 'coffee'} number {i}"} for i in range(30)]
        assert http.post("/v1/collections/sh/documents", json={"documents": docs}).status_code in (200, 201)
        info = http.get("/v1/collections/sh").json()
        assert info["documents"] == 30 and {s["state"] for s in info["shard_status"]} == {"alive"}
        assert sum(s["documents"] for s in info["shard_status"]) == 30
        assert {s["host"] for s in info["shard_status"]} == {"a", "b", "c"}
        found = http.post("/v1/collections/sh/search", json={"query": "tea", "top_k": 5}).json()
        assert found["partial"] is False and found["shards"] == [0, 1, 2] and len(found["data"]) == 5
        metrics = http.get("/metrics").text
        assert 'retrieval_shard_up{collection="sh",host="' in metrics and "retrieval_shard_documents" in metrics

        tag = RayShardBackend(server.data_dir).tag
        ray.kill(ray.get_actor(f"sh/1@{tag}", namespace="retrieval"), no_restart=False)
        refused = partial = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answer = http.post("/v1/collections/sh/search", json={"query": "tea", "top_k": 5})
            if answer.status_code == 503:
                refused += 1
                assert answer.headers["Retry-After"] == "1" and "shard 1 of 3" in answer.json()["error"]["message"]
                loose = http.post("/v1/collections/sh/search", json={"query": "tea", "allow_partial": True}).json()
                partial += loose["partial"] is True and loose["shards"] == [0, 2]
                continue
            assert answer.status_code == 200 and answer.json()["shards"] == [0, 1, 2]
            if refused:
                break
            time.sleep(0.05)
        assert refused and partial, (refused, partial)
        assert http.get("/v1/collections/sh").json()["documents"] == 30  # the restarted shard reopened its store
        assert http.delete("/v1/collections/sh").status_code == 200
