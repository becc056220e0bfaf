"""`POST /v1/collections/{name}/reindex` end to end: a job that builds a new collection from the stored documents,
catches up with writes made meanwhile and swaps an alias, while searches through the alias never fail or see a
half-built collection."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry, ServiceConfig
from tests.api._retrieval import assert_error, ingest, ranked_ids
from tests.api._server import live_server

WORDS = [
    "amber",
    "basalt",
    "cedar",
    "dune",
    "ember",
    "fjord",
    "glacier",
    "heath",
    "inlet",
    "jungle",
    "karst",
    "lagoon",
    "marsh",
]


def docs(n: int, prefix: str = "d") -> list[dict[str, Any]]:
    """`n` documents; document i holds the unique word `u{i}x` (a BM25 probe that finds exactly it)."""
    return [
        {"id": f"{prefix}{i}", "text": f"{WORDS[i % len(WORDS)]} report u{prefix}{i}x", "metadata": {"i": i}}
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def registry(tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    """Two tiny dense models: `tiny` (BERT, mean pooling) and `tiny2` (XLM-R, CLS pooling)."""
    engines = [
        Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="tiny")),
        Engine.load(ModelSpec(source=str(tiny_store("xlmr_cls")), name="tiny2")),
    ]
    yield ModelRegistry(engines)
    for engine in engines:
        engine.close()


@pytest.fixture
def client(registry: ModelRegistry, tmp_path: Path) -> Iterator[httpx.Client]:
    with live_server(registry, ServiceConfig(data_dir=str(tmp_path / "data"))) as live, live.client() as c:
        yield c


def wait_job(client: httpx.Client, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return dict(job)
        assert time.monotonic() < deadline, job
        time.sleep(0.02)


def setup_source(client: httpx.Client, n: int) -> None:
    assert client.post("/v1/collections", json={"name": "v1", "dense_model": "tiny"}).status_code == 201
    for start in range(0, n, 100):
        ingest(client, "v1", docs(n)[start : start + 100])
    alias = {"create_alias": {"alias_name": "live", "collection_name": "v1"}}
    assert client.post("/v1/aliases", json={"actions": [alias]}).status_code == 200


def reindex(client: httpx.Client, **body: Any) -> dict[str, Any]:
    resp = client.post("/v1/collections/live/reindex", json=body)
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert (job["kind"], job["source"], job["target"]) == ("reindex", "v1", body["target"])
    return dict(job)


def test_reindex_to_another_model_and_swap_the_alias(client: httpx.Client) -> None:
    setup_source(client, 120)
    before = client.get("/v1/collections/v1").json()
    job = reindex(client, target="v2", dense_model="tiny2", chunking={"mode": "truncate"}, swap_alias="live")
    done = wait_job(client, job["id"])
    assert (done["state"], done["phase"], done["done"], done["total"]) == ("done", "finished", 120, 120), done
    assert client.get("/v1/aliases").json()["data"] == [{"alias_name": "live", "collection_name": "v2"}]
    new = client.get("/v1/collections/live").json()
    assert (new["name"], new["dense_model"], new["documents"], new["chunking"]["mode"]) == (
        "v2",
        "tiny2",
        120,
        "truncate",
    )
    assert new["building"] is None and new["aliases"] == ["live"]
    assert client.get("/v1/collections/v1").json() == {**before, "aliases": []}  # the source is untouched
    for i in (0, 57, 119):
        assert ranked_ids(client, "live", query=f"ud{i}x", mode="bm25", top_k=1) == [f"d{i}"]
    assert ranked_ids(client, "live", query="amber report", mode="dense", top_k=3)
    got = client.get("/v1/collections/v2/documents/d5").json()
    assert got["metadata"] == {"i": 5} and got["text"] == docs(6)[5]["text"]


def test_index_only_change_copies_the_stored_vectors(client: httpx.Client) -> None:
    setup_source(client, 40)
    index = {"dense": {"metric": "cosine", "kind": "hnsw"}}
    done = wait_job(client, reindex(client, target="v1-hnsw", index=index)["id"])
    assert done["state"] == "done", done
    assert client.get("/v1/aliases").json()["data"][0]["collection_name"] == "v1"  # no swap asked
    query = {"query": "cedar report", "mode": "dense", "top_k": 5}
    old = client.post("/v1/collections/v1/search", json=query).json()["data"]
    new = client.post("/v1/collections/v1-hnsw/search", json=query).json()["data"]
    assert [h["id"] for h in new] == [h["id"] for h in old]
    assert [h["score"] for h in new] == pytest.approx([h["score"] for h in old], abs=1e-5)  # same vectors


class _Load(threading.Thread):
    """Searches through the alias (each must find the probe document) or writes through it, until stopped."""

    def __init__(self, url: str, work: Callable[[httpx.Client, int], None]) -> None:
        super().__init__(daemon=True)
        self.url, self.work = url, work
        self.stop = threading.Event()
        self.count = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            try:
                while not self.stop.is_set():
                    self.work(client, self.count)
                    self.count += 1
            except BaseException as exc:  # reported by the test
                self.error = exc


def test_searches_and_writes_through_the_alias_during_a_reindex(client: httpx.Client) -> None:
    n = 300
    setup_source(client, n)
    written: list[str] = []
    deleted = ["d1", "d2", "d3"]

    def search(c: httpx.Client, k: int) -> None:
        i = (k * 37) % n
        if f"d{i}" in deleted:
            return
        resp = c.post("/v1/collections/live/search", json={"query": f"ud{i}x", "mode": "bm25", "top_k": 1})
        assert resp.status_code == 200, resp.text
        assert [h["id"] for h in resp.json()["data"]] == [f"d{i}"], (i, resp.json())

    def write(c: httpx.Client, k: int) -> None:
        doc = docs(1, prefix=f"w{k}-")[0]
        resp = c.post("/v1/collections/live/documents", json={"documents": [doc]})
        assert resp.status_code == 200, resp.text
        written.append(doc["id"])

    searcher, writer = _Load(str(client.base_url), search), _Load(str(client.base_url), write)
    searcher.start()
    writer.start()
    job = reindex(client, target="v2", dense_model="tiny2", swap_alias="live", batch_size=4)
    for doc_id in deleted:
        assert client.delete(f"/v1/collections/live/documents/{doc_id}").status_code == 200
    busy = client.post("/v1/collections/v2/documents", json={"documents": docs(1, "x")})
    assert_error(busy, 409, "v2", job["id"])  # nobody else writes to the collection being built
    done = wait_job(client, job["id"])
    time.sleep(0.2)  # some searches and writes after the swap too
    for load in (searcher, writer):
        load.stop.set()
        load.join(timeout=60)
        assert load.error is None, load.error
    assert done["state"] == "done", done
    assert searcher.count > 10 and written
    target = client.get("/v1/collections/live").json()
    assert target["name"] == "v2"
    for doc_id in written:  # every acknowledged write through the alias is in the new collection
        assert client.get(f"/v1/collections/live/documents/{doc_id}").status_code == 200, doc_id
    for doc_id in deleted:
        assert client.get(f"/v1/collections/live/documents/{doc_id}").status_code == 404, doc_id
    before_swap = {d for d in written if client.get(f"/v1/collections/v1/documents/{d}").status_code == 200}
    assert target["documents"] == n - len(deleted) + len(written)
    assert client.get("/v1/collections/v1").json()["documents"] == n - len(deleted) + len(before_swap)


def test_cancel_deletes_the_target_and_keeps_the_source(client: httpx.Client) -> None:
    setup_source(client, 300)
    job = reindex(client, target="v2", dense_model="tiny2", swap_alias="live", batch_size=1)  # at once
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["state"], cancelled.json()["error"]) == ("failed", "cancelled by a client")
    assert_error(client.get("/v1/collections/v2"), 404, "v2")
    job = reindex(client, target="v3", dense_model="tiny2", swap_alias="live", batch_size=1)  # now halfway
    while (progress := client.get(f"/v1/jobs/{job['id']}").json())["done"] < 10:
        assert progress["state"] in ("queued", "running"), progress
        time.sleep(0.005)
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel").json()
    assert (cancelled["state"], cancelled["error"], cancelled["done"] >= 10) == (
        "failed",
        "cancelled by a client",
        True,
    )
    assert_error(client.get("/v1/collections/v3"), 404, "v3")
    assert client.get("/v1/collections/live").json()["name"] == "v1"
    assert client.get("/v1/collections/v1").json()["documents"] == 300


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"target": "v1"}, 409, "v1"),  # the target exists
        ({"target": "live"}, 409, "alias"),
        ({"target": "v2", "dense_model": "nope"}, 404, "nope"),
        ({"target": "v2", "swap_alias": "v1"}, 409, "collection"),
        ({"target": "v2", "batch_size": 0}, 400, "batch_size"),
        ({"target": "bad name!"}, 400, "name"),
    ],
)
def test_refused_requests(client: httpx.Client, body: dict[str, Any], status: int, text: str) -> None:
    setup_source(client, 3)
    assert_error(client.post("/v1/collections/live/reindex", json=body), status, text)
    assert [c["name"] for c in client.get("/v1/collections").json()["data"]] == ["default", "v1"]


def test_unknown_source_and_job(client: httpx.Client) -> None:
    assert_error(client.post("/v1/collections/nope/reindex", json={"target": "x"}), 404, "nope")
    assert_error(client.get("/v1/jobs/nope"), 404, "nope")
    assert_error(client.post("/v1/jobs/nope/cancel"), 404, "nope")
