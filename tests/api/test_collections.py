"""`/v1/collections` end to end: create, list, get, delete, their errors, and a restart on the same data dir."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from retrieval import ModelRegistry, ServiceConfig
from tests.api._retrieval import CE, assert_error, ingest, ranked_ids, with_cross_encoder
from tests.api._server import live_server
from tests.fixtures.pdfs import pdf_bytes

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def client(minilm_registry: ModelRegistry, tiny_store: Callable[[str], Path]) -> Iterator[httpx.Client]:
    with (
        with_cross_encoder(minilm_registry, tiny_store) as registry,
        live_server(registry) as live,
        live.client() as c,
    ):
        yield c


def test_default_collection_is_minilm_with_dense_and_bm25(client: httpx.Client) -> None:
    default = client.get("/v1/collections/default").json()
    assert (default["name"], default["dense_model"], default["bm25"], default["modes"]) == (
        "default",
        MINILM,
        True,
        ["dense", "bm25"],
    )


def test_create_list_get_delete(client: httpx.Client) -> None:
    body = {"name": "notes", "dense_model": MINILM, "reranker": CE, "chunking": {"mode": "truncate"}}
    created = client.post("/v1/collections", json=body)
    assert created.status_code == 201, created.text
    coll = created.json()
    assert (coll["object"], coll["name"], coll["reranker"], coll["chunking"]["mode"]) == (
        "collection",
        "notes",
        CE,
        "truncate",
    )
    assert (coll["documents"], coll["chunks"], coll["modes"], coll["fusion"]) == (
        0,
        0,
        ["dense", "bm25"],
        {"method": "rrf", "k": 60, "weights": None},
    )
    assert set(coll["bytes"]) == {"dense", "multivector", "sparse", "text", "metadata"}
    ingest(client, "notes", [{"id": "a", "text": "alpha beta"}, {"id": "b", "text": "gamma"}])
    got = client.get("/v1/collections/notes").json()
    assert (got["documents"], got["chunks"]) == (2, 2)
    assert got["bytes"]["dense"] == 2 * 384 * 4 and got["bytes"]["text"] > 0
    names = [c["name"] for c in client.get("/v1/collections").json()["data"]]
    assert "notes" in names and "default" in names
    deleted = client.delete("/v1/collections/notes")
    assert deleted.status_code == 200 and deleted.json() == {"id": "notes", "object": "collection", "deleted": True}
    assert_error(client.get("/v1/collections/notes"), 404, "notes")
    assert_error(client.post("/v1/collections/notes/search", json={"query": "alpha"}), 404)
    assert_error(client.delete("/v1/collections/notes"), 404)
    assert "notes" not in [c["name"] for c in client.get("/v1/collections").json()["data"]]


def test_bm25_only_collection(client: httpx.Client) -> None:
    made = client.post("/v1/collections", json={"name": "lexical", "dense_model": None})  # null: no dense model
    assert made.status_code == 201 and made.json()["modes"] == ["bm25"]
    ingest(client, "lexical", [{"id": "x", "text": "the quick brown fox"}, {"id": "y", "text": "lazy dogs sleep"}])
    assert ranked_ids(client, "lexical", query="fox", mode="bm25") == ["x"]
    assert_error(client.post("/v1/collections/lexical/search", json={"query": "fox", "mode": "dense"}), 400, "dense")


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"name": "default"}, 409, "name"),
        ({"name": "m", "dense_model": "no-such-model"}, 404, "dense_model"),
        ({"name": "m", "dense_model": CE}, 400, "dense_model"),
        ({"name": "m", "sparse_model": MINILM}, 400, "sparse_model"),
        ({"name": "m", "dense_model": MINILM, "reranker": MINILM}, 400, "reranker"),
        ({"name": "bad name!"}, 400, "name"),
        ({"name": "m", "dense_model": None, "bm25": False}, 400, None),
        ({"name": "m", "chunking": {"mode": "split", "max_tokens": 16, "overlap": 16}}, 400, "chunking.overlap"),
        ({"name": "m", "surprise": 1}, 400, None),
    ],
)
def test_create_errors(client: httpx.Client, body: dict[str, object], status: int, param: str | None) -> None:
    err = assert_error(client.post("/v1/collections", json=body), status)
    if param is not None:
        assert err["param"] == param, err


def _state(client: httpx.Client) -> dict[str, object]:
    out: dict[str, object] = {"collection": client.get("/v1/collections/kept").json()}
    for mode in ("dense", "bm25", "hybrid"):
        out[mode] = ranked_ids(client, "kept", query="page about volcanoes", mode=mode, top_k=20)
    out["doc"] = client.get("/v1/collections/kept/documents/v.pdf%23page=2").json()
    return out


def test_restart_on_the_same_data_dir_finds_everything(minilm_registry: ModelRegistry, tmp_path: Path) -> None:
    config = ServiceConfig(data_dir=str(tmp_path / "data"))
    with live_server(minilm_registry, config) as live, live.client() as c:
        assert c.post("/v1/collections", json={"name": "kept", "dense_model": MINILM}).status_code == 201
        ingest(
            c,
            "kept",
            [{"id": f"d{i}", "text": f"note {i} on rivers and lakes", "metadata": {"i": i}} for i in range(30)],
        )
        pdf = pdf_bytes(["Rivers run to the sea.", "Volcanoes erupt with lava."])
        assert c.post("/v1/collections/kept/files", files=[("f", ("v.pdf", pdf, "application/pdf"))]).status_code == 200
        assert c.delete("/v1/collections/kept/documents/d3").status_code == 200
        before = _state(c)
    assert (tmp_path / "data" / "store.sqlite3").is_file() and (tmp_path / "data" / "indexes" / "kept").is_dir()
    with live_server(minilm_registry, config) as live, live.client() as c:
        after = _state(c)
        assert_error(c.get("/v1/collections/kept/documents/d3"), 404)
        assert "d3" not in ranked_ids(c, "kept", query="note 3 on rivers and lakes", mode="hybrid", top_k=40)
    assert after == before
    assert before["collection"]["documents"] == 31  # type: ignore[index]
    assert before["hybrid"][0] == "v.pdf#page=2"  # type: ignore[index]
    assert before["doc"]["page"] == 2 and before["doc"]["source"] == "v.pdf"  # type: ignore[index]


def test_snapshots_are_written_in_the_background(minilm_registry: ModelRegistry, tmp_path: Path) -> None:
    config = ServiceConfig(data_dir=str(tmp_path), snapshot_interval_s=0.05)
    with live_server(minilm_registry, config) as live, live.client() as c:
        ingest(c, "default", [{"id": "s", "text": "snapshot me"}])
        manifests = tmp_path / "indexes" / "default"
        deadline = time.monotonic() + 10
        while not list(manifests.rglob("manifest.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(manifests.rglob("manifest.json")), "no snapshot while the server runs"
        assert ranked_ids(c, "default", query="snapshot me", mode="dense") == ["s"]
