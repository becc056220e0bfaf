"""A collection's settings (retrieval/spec/collection.py) on every path that makes one: the dense metric is cosine
whether or not `index.dense` is given, after a PATCH, through `reindex --settings` (which changes only the
fields it names) and an export/import; and a search over a model that does not normalise ranks by cosine. A
create that names no model gets the server's default dense model and BM25, as `ingest --create` does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from encoder import Engine, ModelSpec, PoolerConfig, PoolingParams
from retrieval import LocalRetrieval, ModelRegistry, RetrievalClient
from retrieval.cli import build_parser, run_command
from tests.api._server import LiveServer, live_server
from tests.fixtures.checkpoints import write_bert_st

DOCS = [{"id": f"d{i:02d}", "text": f"note {i} on {w} and {w}s, item {i * 7}"} for i, w in enumerate("abcdefghij" * 3)]
QUERIES = ["note on b and bs", "item 63 on f", "a g h"]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelRegistry]:
    """A tiny sentence-transformers model that does not normalise (as `--pooler-config '{"normalize": false}'`)."""
    folder = write_bert_st(tmp_path_factory.mktemp("raw") / "raw", normalize=False)
    engine = Engine.load(ModelSpec(source=str(folder), name="raw", pooler_config=PoolerConfig(normalize=False)))
    yield ModelRegistry([engine])
    engine.close()


def _orders(registry: ModelRegistry, query: str) -> tuple[list[str], list[str]]:
    """Document ids by cosine and by inner product with the query, computed here from the model's vectors."""
    engine = registry.get("raw")
    docs = engine.encode_sync([d["text"] for d in DOCS], PoolingParams(task="embed")).dense()
    q = engine.encode_sync([query], PoolingParams(task="embed")).dense()[0]
    norms = np.linalg.norm(docs, axis=1)
    assert norms.max() / norms.min() > 1.01  # not normalised: cosine and inner product rank differently
    ids = [d["id"] for d in DOCS]
    ip = docs @ q
    return [ids[i] for i in np.argsort(-ip / norms, kind="stable")], [ids[i] for i in np.argsort(-ip, kind="stable")]


def _check_cosine(api: Any, registry: ModelRegistry, name: str) -> None:
    info = api.collection(name)
    assert info["index"]["dense"]["metric"] == "cosine", (name, info["index"]["dense"])
    differ = 0
    for query in QUERIES:
        cosine, ip = _orders(registry, query)
        hits = api.search(name, query, mode="dense", top_k=10)
        assert [h["id"] for h in hits] == cosine[:10], (name, query)
        differ += cosine[:10] != ip[:10]
    assert differ  # the queries tell the two metrics apart


def _flow(api: Any, registry: ModelRegistry) -> None:
    """Create with an `index.dense` setting, PATCH, and a reindex that changes one index field."""
    made = api.create_collection(name="tuned", dense_model="raw", index={"dense": {"nprobe": 8}})
    assert made["index"]["dense"]["metric"] == "cosine" and made["index"]["dense"]["nprobe"] == 8
    api.add_documents("tuned", DOCS)
    _check_cosine(api, registry, "tuned")
    api.update_collection("tuned", candidates=50, fusion={"method": "rrf", "k": 10})
    _check_cosine(api, registry, "tuned")
    api.reindex("tuned", "flat", index={"dense": {"kind": "flat"}}, chunking={"mode": "truncate"})
    flat = api.collection("flat")["index"]
    assert (flat["dense"]["kind"], flat["dense"]["nprobe"]) == ("flat", 8)  # settings left out are the source's
    assert flat["bm25"] == made["index"]["bm25"] and flat["multivector"] == made["index"]["multivector"]
    _check_cosine(api, registry, "flat")
    api.create_collection(name="inner", dense_model="raw", index={"dense": {"metric": "ip"}})
    api.add_documents("inner", DOCS)
    api.reindex("inner", "inner2", index={"dense": {"kind": "flat"}})
    assert api.collection("inner2")["index"]["dense"]["metric"] == "ip"  # an explicit choice is kept too


def test_local_collections_stay_cosine_on_every_path(raw: ModelRegistry, tmp_path: Path) -> None:
    with LocalRetrieval(tmp_path / "data", raw) as local:
        assert local.collection("default")["index"]["dense"]["metric"] == "cosine"
        _flow(local, raw)


@pytest.fixture
def server(raw: ModelRegistry) -> Iterator[LiveServer]:
    with live_server(raw) as live:
        yield live


def test_rest_cli_and_import_keep_cosine(server: LiveServer, raw: ModelRegistry, tmp_path: Path) -> None:
    with RetrievalClient(server.url) as client, server.client() as http:
        _flow(client, raw)
        settings = '{"index": {"dense": {"kind": "flat", "ef_search": 64}}}'
        argv = ["reindex", "tuned", "--target", "cli", "--settings", settings, "--url", server.url, "--quiet"]
        assert run_command(build_parser().parse_args(argv)) == 0
        assert client.collection("cli")["index"]["dense"]["ef_search"] == 64
        _check_cosine(client, raw, "cli")
        archive = http.get("/v1/collections/tuned/export").content
        imported = http.post(
            "/v1/collections/import",
            params={"name": "moved"},
            content=archive,
            headers={"Content-Type": "application/x-tar"},
        )
        assert imported.status_code == 201, imported.text
        _check_cosine(client, raw, "moved")


def test_a_create_that_names_no_model_gets_the_default_model_and_bm25(server: LiveServer) -> None:
    with server.client() as http:
        bare = http.post("/v1/collections", json={"name": "wiki"})
        assert bare.status_code == 201 and bare.json()["modes"] == ["dense", "bm25"]
        assert bare.json()["dense_model"] == "raw" and bare.json()["index"]["dense"]["metric"] == "cosine"
        lexical = http.post("/v1/collections", json={"name": "lex", "dense_model": None}).json()
        assert lexical["modes"] == ["bm25"]  # null says: no dense representation
        tokens = http.post("/v1/collections", json={"name": "m", "multivector_model": "raw"}).json()
        assert tokens["modes"] == ["multivector", "bm25"]  # a body naming a model gets what it names
        wrong = http.post("/v1/collections", json={"name": "x", "index": {"dense": {"kind": "tree"}}})
        assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "body.index.dense.kind"
        assert isinstance(http, httpx.Client)
