"""A sharded collection through a live server on the session's Ray cluster: create with `shards`, per-shard
status, search answers naming the shards, a killed shard answers 503 with Retry-After (or `partial` when asked),
and `/metrics` per shard."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry, ServiceConfig
from tests.api._server import LiveServer, live_server


@pytest.fixture(scope="module")
def server(ray_address: str, tiny_store: Callable[[str], Path]) -> Iterator[LiveServer]:
    registry = ModelRegistry([Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="dense"))])
    with live_server(registry, ServiceConfig(ray=ray_address, shard_timeout_s=5)) as live:
        yield live
    registry.close()


def test_a_sharded_collection_over_rest(server: LiveServer, ray_cluster: Any) -> None:
    cluster = ray_cluster
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

        host = info["shard_status"][1]["host"]  # take shard 1's node away: it stays down until the node returns
        cluster.remove_node(cluster.shard_nodes[host])
        answer = http.post("/v1/collections/sh/search", json={"query": "tea", "top_k": 5})
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1", answer.text
        assert "shard 1 of 3" in answer.json()["error"]["message"]
        loose = http.post("/v1/collections/sh/search", json={"query": "tea", "allow_partial": True}).json()
        assert loose["partial"] is True and loose["shards"] == [0, 2]
        status = http.get("/v1/collections/sh").json()["shard_status"]
        assert [s["state"] for s in status] == ["alive", "unavailable", "alive"]
        cluster.shard_nodes[host] = cluster.add_node(num_cpus=1, labels={"retrieval-host": host}, **cluster.node_args)
        deadline = time.monotonic() + 90
        while http.post("/v1/collections/sh/search", json={"query": "tea"}).status_code != 200:
            assert time.monotonic() < deadline, "the shard did not come back with its node"
            time.sleep(0.5)
        assert http.get("/v1/collections/sh").json()["documents"] == 30  # the shard reopened its store there
        assert http.delete("/v1/collections/sh").status_code == 200
