"""Start with whatever models are served: a data directory written by another model set opens, each collection
with the representations it can still serve, and what needs a missing model answers 409 naming the collection,
the mode and the model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry, ServiceConfig
from tests.api._retrieval import CE, assert_error, ingest, ranked_ids
from tests.api._server import live_server

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
DOCS = [{"id": f"d{i}", "text": f"note {i} about {w}"} for i, w in enumerate(["rivers", "mountains", "deserts"])]


@contextmanager
def _tiny(tiny_store: Callable[[str], Path], kind: str = "bert_st_mean", name: str = "tiny") -> Iterator[ModelRegistry]:
    engine = Engine.load(ModelSpec(source=str(tiny_store(kind)), name=name))
    try:
        yield ModelRegistry([engine])
    finally:
        engine.close()


@contextmanager
def _serve(registry: ModelRegistry, data: Path) -> Iterator[httpx.Client]:
    with live_server(registry, ServiceConfig(data_dir=str(data))) as live, live.client() as client:
        assert client.get("/readyz").status_code == 200
        yield client


def _write(registry: ModelRegistry, data: Path, model: str) -> None:
    with _serve(registry, data) as client:
        assert client.post("/v1/collections", json={"name": "notes", "dense_model": model}).status_code == 201
        ingest(client, "notes", DOCS)


def _check_opened_without(client: httpx.Client, model: str, served: str) -> None:
    notes = client.get("/v1/collections/notes").json()
    assert notes["documents"] == 3 and notes["dense_model"] == model
    available = notes["available"]
    assert available["bm25"] == {"available": True}
    assert available["dense"]["available"] is False and model in available["dense"]["reason"]
    assert available["write"]["available"] is False
    listed = {c["name"]: c for c in client.get("/v1/collections").json()["data"]}
    assert listed["notes"]["available"]["dense"]["available"] is False
    # what needs no model still works: BM25, "more like this" over stored vectors, reads, deletes
    assert ranked_ids(client, "notes", query="mountains", mode="bm25", top_k=3)[0] == "d1"
    assert ranked_ids(client, "notes", like="d0", mode="dense", top_k=3)
    assert client.get("/v1/collections/notes/documents/d2").json()["text"] == DOCS[2]["text"]
    # what needs the model is a 409 naming the collection, the mode and the model
    for mode in ("dense", "hybrid"):
        resp = client.post("/v1/collections/notes/search", json={"query": "rivers", "mode": mode})
        assert_error(resp, 409, "`notes`", mode, model, served)
    write = client.post("/v1/collections/notes/documents", json={"documents": [{"id": "x", "text": "new"}]})
    assert_error(write, 409, "`notes`", "take writes", model)
    assert client.delete("/v1/collections/notes/documents/d2").status_code == 200


def test_a_tiny_model_collection_opens_under_minilm_alone(
    tiny_store: Callable[[str], Path], minilm_registry: ModelRegistry, tmp_path: Path
) -> None:
    with _tiny(tiny_store) as tiny:
        _write(tiny, tmp_path, "tiny")
    with _serve(minilm_registry, tmp_path) as client:
        _check_opened_without(client, "tiny", MINILM)
        default = client.get("/v1/collections/default").json()  # created over `tiny` at the first start
        assert default["dense_model"] == "tiny"  # never re-pointed at the model served now


def test_a_minilm_collection_opens_under_a_tiny_model_alone(
    tiny_store: Callable[[str], Path], minilm_registry: ModelRegistry, tmp_path: Path
) -> None:
    _write(minilm_registry, tmp_path, MINILM)
    with _tiny(tiny_store) as tiny, _serve(tiny, tmp_path) as client:
        _check_opened_without(client, MINILM, "tiny")
        assert client.get("/v1/collections/default").json()["dense_model"] == MINILM


def test_serving_only_a_cross_encoder_over_a_minilm_data_dir(
    tiny_store: Callable[[str], Path], minilm_registry: ModelRegistry, tmp_path: Path
) -> None:
    """The issue's start-up case: `make serve`, then `retrieval serve --model ce=<a cross-encoder>`."""
    with _serve(minilm_registry, tmp_path) as client:
        ingest(client, "default", DOCS)
    with _tiny(tiny_store, "bert_ce", CE) as ce, _serve(ce, tmp_path) as client:
        names = [c["name"] for c in client.get("/v1/collections").json()["data"]]
        assert names == ["default"]  # no second default over the cross-encoder
        assert ranked_ids(client, "default", query="deserts", mode="bm25", top_k=3)[0] == "d2"
        hits = client.post(
            "/v1/collections/default/search",
            json={"query": "deserts", "mode": "bm25", "rerank": {"model": CE, "top_n": 3}},
        )
        assert hits.status_code == 200 and "rerank" in hits.json()["data"][0]["scores"]
        assert_error(client.post("/v1/collections/default/search", json={"query": "x"}), 409, MINILM, "hybrid")


def test_evaluate_needs_every_model_of_the_collection(
    tiny_store: Callable[[str], Path], minilm_registry: ModelRegistry, tmp_path: Path
) -> None:
    with _tiny(tiny_store) as tiny:
        _write(tiny, tmp_path, "tiny")
    with _serve(minilm_registry, tmp_path) as client:
        req = {"queries": {"q": "rivers"}, "qrels": {"q": {"d0": 1}}, "modes": ["bm25"]}
        assert_error(client.post("/v1/collections/notes/evaluate", json=req), 409, "`notes`", "tiny")
