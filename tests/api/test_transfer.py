"""Export / import (issue 22, item 5): `GET /v1/collections/{name}/export` under a write stream, restored by
`POST /v1/collections/import?name=NEW` (and `retrieval export` / `retrieval import`) on a second server: every
document acknowledged before the export began is there, whole, and searchable with equal scores. An IVF
collection comes up on the second server from the archive's index snapshots (not retrained: every mode scores
exactly as the source did, also after a restart); an archive of format version 1 (no snapshots) still imports,
its indexes rebuilt. A damaged archive (an index snapshot member included), another model's vector width, a
taken name or a key without write access are refused before anything is written."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from api.server import main
from encoder import Engine, ModelSpec
from retrieval import ModelRegistry, ServiceConfig
from retrieval.common.access import ScopedKey
from tests.api._retrieval import assert_error
from tests.api._server import live_server
from tests.api.test_backup import ADMIN, COLL, READ, Stream, _text
from tests.fixtures.pdfs import pdf_bytes
from tests.retrieval.transfer.test_snapshots import _centroids, _repack, _version_1

TAR = {"Content-Type": "application/x-tar"}
QUERIES = ["alpha beta", "gamma delta epsilon", "zeta", "the quick brown"]


@pytest.fixture(scope="module")
def registry(tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="tiny"))
    yield ModelRegistry([engine])
    engine.close()


def _config(data: Path, **extra: Any) -> ServiceConfig:
    return ServiceConfig(data_dir=str(data), admin_keys=(ADMIN,), read_keys=(READ,), **extra)


def _export(client: httpx.Client, name: str, out: Path) -> None:
    with client.stream("GET", f"/v1/collections/{name}/export") as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("application/x-tar")
        out.write_bytes(b"".join(resp.iter_bytes()))


def _import(client: httpx.Client, archive: Path | bytes, name: str, **headers: str) -> httpx.Response:
    body = archive if isinstance(archive, bytes) else archive.read_bytes()
    return client.post("/v1/collections/import", params={"name": name}, content=body, headers={**TAR, **headers})


def _search(client: httpx.Client, name: str, body: dict[str, Any]) -> list[tuple[str, float]]:
    resp = client.post(f"/v1/collections/{name}/search", json=body)
    assert resp.status_code == 200, resp.text
    return [(h["id"], h["score"]) for h in resp.json()["data"]]


def _results(client: httpx.Client, name: str) -> dict[str, list[tuple[str, float]]]:
    return {
        f"{mode}:{q}": _search(client, name, {"query": q, "mode": mode, "top_k": 10})
        for mode in ("dense", "bm25", "hybrid")
        for q in QUERIES
    }


def test_export_under_a_write_stream_and_import_on_a_second_server(registry: ModelRegistry, tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with live_server(registry, _config(tmp_path / "a")) as a, a.client(headers=auth) as client:
        spec = {"name": COLL, "dense_model": "tiny", "chunking": {"max_tokens": 8, "overlap": 2}}
        assert client.post("/v1/collections", json=spec).status_code == 201
        stream = Stream(a.url)
        stream.start()
        before = stream.wait_past(29)
        _export(client, COLL, tmp_path / "live.tar")
        before_cli = stream.wait_past(len(before))  # writes go on across the export
        assert main(["export", COLL, str(tmp_path / "cli.tar"), "--url", a.url, "--api-key", ADMIN]) == 0
        stream.wait_past(len(before_cli))
        stream.stop.set()
        stream.join(timeout=60)
        assert not stream.errors, stream.errors
        _export(client, COLL, tmp_path / "final.tar")  # no writes now: the whole collection
        reference = _results(client, COLL)
        dense = {n: _search(client, COLL, _by_doc(n)) for n in range(len(before))}
        assert not list((tmp_path / "a" / "transfers").iterdir())  # scratch files are gone
    with live_server(registry, _config(tmp_path / "b")) as b, b.client(headers=auth) as client:
        resp = _import(client, tmp_path / "live.tar", "copy")
        assert resp.status_code == 201, resp.text
        assert resp.json()["documents"] >= len(before) and resp.json()["dense_model"] == "tiny"
        for n in range(len(before)):
            doc = client.get(f"/v1/collections/copy/documents/s{n}").json()
            assert doc["text"] == _text(n), doc
            assert _search(client, "copy", _by_doc(n)) == dense[n]  # its chunks, with the same scores
        assert (
            main(["import", str(tmp_path / "cli.tar"), "--name", "cli-copy", "--url", b.url, "--api-key", ADMIN]) == 0
        )
        assert client.get("/v1/collections/cli-copy").json()["documents"] >= len(before_cli)
        assert _import(client, tmp_path / "final.tar", "final").status_code == 201
        assert _results(client, "final") == reference  # the same hits with the same scores, every mode
        again = {"documents": [{"id": "s0", "text": _text(0), "metadata": {"n": 0}}]}
        assert client.post("/v1/collections/final/documents", json=again).json()["skipped"] == ["s0"]  # same hash


def _by_doc(n: int) -> dict[str, Any]:
    return {"query": _text(n), "mode": "dense", "filter": {"n": n}, "top_k": 10}


def _rebuilt(archive: Path, change: Callable[[str, bytes], bytes], extra: str | None = None) -> bytes:
    """The archive with each member's bytes passed through `change(name, data)` (the manifest as it was), plus
    a member named `extra` when given."""
    out = io.BytesIO()
    with tarfile.open(archive) as src, tarfile.open(fileobj=out, mode="w") as dst:
        members = [(m.name, src.extractfile(m).read()) for m in src]  # type: ignore[union-attr]
        for name, data in [*members, *([(extra, b"x")] if extra else [])]:
            data = change(name, data)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _names(client: httpx.Client) -> set[str]:
    return {c["name"] for c in client.get("/v1/collections").json()["data"]}


def test_refused_before_anything_is_written(registry: ModelRegistry, minilm_path: Path, tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    config = _config(tmp_path / "a", scoped_keys=(ScopedKey("app-key", ("app-*",), "write"),))
    with live_server(registry, config) as server, server.client(headers=auth) as client:
        assert client.post("/v1/collections", json={"name": "src", "dense_model": "tiny"}).status_code == 201
        docs = [{"id": f"d{i}", "text": f"alpha document number {i}"} for i in range(5)]
        assert client.post("/v1/collections/src/documents", json={"documents": docs}).status_code == 200
        archive = tmp_path / "src.tar"
        _export(client, "src", archive)
        damaged = _rebuilt(archive, lambda n, d: d.replace(b"alpha", b"omega") if n == "documents.jsonl" else d)
        assert_error(_import(client, damaged, "t1"), 400, "checksum")
        flipped = _rebuilt(archive, lambda n, d: d[:-1] + bytes([d[-1] ^ 1]) if n.startswith("indexes/dense/") else d)
        assert_error(_import(client, flipped, "t5"), 400, "checksum")  # a tampered index snapshot member
        assert_error(_import(client, _rebuilt(archive, lambda n, d: d, "../escape"), "t2"), 400, "layout")
        assert_error(_import(client, b"not a tar archive at all", "t3"), 400, "tar")
        assert_error(_import(client, archive, "src"), 409, "already exists")
        assert_error(_import(client, archive, "t4", Authorization=f"Bearer {READ}"), 403, "read-only")
        assert_error(_import(client, archive, "other", Authorization="Bearer app-key"), 403, "may not")
        assert _import(client, archive, "app-1", Authorization="Bearer app-key").status_code == 201
        assert _names(client) - {"default"} == {"src", "app-1"}
        assert not list((tmp_path / "a" / "transfers").iterdir())
        assert not (tmp_path / "escape").exists()
    wide = Engine.load(ModelSpec(source=str(minilm_path), name="tiny"))  # same name, 384 wide instead of 32
    try:
        with live_server(ModelRegistry([wide]), _config(tmp_path / "c")) as other, other.client(headers=auth) as c:
            err = assert_error(_import(c, archive, "src"), 400, "32 wide", "384")
            assert err["param"] == "archive.dims.dense"
            assert "src" not in _names(c)
    finally:
        wide.close()


_TINY = (("bert_st_mean", "bert"), ("colqwen3_colpali", "colqwen"))
_BGE_M3 = "BgeM3EmbeddingModel"  # dense + ColBERT + sparse heads


def test_every_representation_and_page_images_travel(tiny_store: Callable[[str], Path], tmp_path: Path) -> None:
    """Dense, multi-vector and sparse vectors (BGE-M3) and PDF page images (ColQwen3) come back identical."""
    m3_model = ModelSpec(source=str(tiny_store("bge_m3")), name="m3", hf_overrides={"architectures": [_BGE_M3]})
    engines = [Engine.load(ModelSpec(source=str(tiny_store(kind)), name=name)) for kind, name in _TINY]
    engines.append(Engine.load(m3_model))
    registry = ModelRegistry(engines)
    m3 = {"name": "m3", "dense_model": "m3", "multivector_model": "m3", "sparse_model": "m3"}
    pdfs = {"name": "pdfs", "multivector_model": "colqwen", "dense_model": "bert", "pages": {"dpi": 72}}
    docs = [
        {"id": f"t{i}", "text": f"{w} rivers and mountains {i}", "metadata": {"i": i}} for i, w in enumerate(QUERIES)
    ]
    queries = {"m3": ("dense", "multivector", "sparse", "bm25", "hybrid"), "pdfs": ("multivector", "dense", "hybrid")}
    try:
        with live_server(registry, ServiceConfig(data_dir=str(tmp_path / "a"))) as a, a.client() as client:
            resp = client.post("/v1/collections", json=m3)
            assert resp.status_code == 201, resp.text
            assert client.post("/v1/collections/m3/documents", json={"documents": docs}).status_code == 200
            assert client.post("/v1/collections", json=pdfs).status_code == 201
            pdf = pdf_bytes(["Apples grow on trees.", "Rivers flow to the sea.", ""])
            files = {"file": ("report.pdf", pdf, "application/pdf")}
            assert client.post("/v1/collections/pdfs/files", files=files).status_code == 200
            reference = _every_mode(client, queries)
            page = _page(client)
            for name in queries:
                _export(client, name, tmp_path / f"{name}.tar")
        with live_server(registry, ServiceConfig(data_dir=str(tmp_path / "b"))) as b, b.client() as client:
            origins = {name: _import(client, tmp_path / f"{name}.tar", name).json()["indexes"] for name in queries}
            assert origins == {  # every family, multi-vector and sparse too, comes from its snapshot
                "m3": {"dense": "snapshot", "multivector": "snapshot", "sparse": "snapshot", "bm25": "snapshot"},
                "pdfs": {"dense": "snapshot", "multivector": "snapshot", "bm25": "snapshot"},
            }
            assert _every_mode(client, queries) == reference
            assert _page(client) == page  # the same image bytes under the same URL
    finally:
        registry.close()


def _every_mode(client: httpx.Client, queries: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, modes in queries.items():
        for mode in modes:
            for q in QUERIES:
                resp = client.post(f"/v1/collections/{name}/search", json={"query": q, "mode": mode, "top_k": 5})
                assert resp.status_code == 200, resp.text
                out[f"{name}:{mode}:{q}"] = [
                    (h["id"], h["score"], h.get("page_image_url")) for h in resp.json()["data"]
                ]
    return out


def _page(client: httpx.Client) -> tuple[str, bytes, bytes]:
    hit = client.post("/v1/collections/pdfs/search", json={"query": "apples", "mode": "multivector"}).json()["data"][0]
    url = hit["page_image_url"]
    image, thumbnail = client.get(url), client.get(url.replace("/image", "/thumbnail"))
    assert image.status_code == 200 and thumbnail.status_code == 200
    return url, image.content, thumbnail.content


IVF = {"kind": "ivf_flat", "metric": "cosine", "nlist": 3, "nprobe": 1}  # one list probed: hits follow centroids


def _ivf_source(client: httpx.Client) -> dict[str, list[tuple[str, float]]]:
    """Collection `ivf`: trained on its first write (39 points a list), grown, upserted and deleted in; its
    results in every mode."""
    spec = {"name": "ivf", "dense_model": "tiny", "index": {"dense": IVF}}
    assert client.post("/v1/collections", json=spec).status_code == 201
    rng = np.random.default_rng(3)
    words = ["river", "road", "bridge", "tower", "field", "lake", "stone", "forest", "hill", "harbour", *QUERIES]
    docs = [{"id": f"v{i}", "text": " ".join(rng.choice(words, 9))} for i in range(163)]
    for part in (docs[:120], docs[120:], [{"id": "v5", "text": "river river bridge"}]):
        assert client.post("/v1/collections/ivf/documents", json={"documents": part}).status_code == 200
    assert client.post("/v1/collections/ivf/documents/delete", json={"ids": ["v7", "v130"]}).status_code == 200
    return _results(client, "ivf")


def _opened(server: Any, name: str) -> str:
    return str(server.app.state.service.opened[name])


def test_an_ivf_collection_comes_up_from_its_snapshots_on_a_second_server(
    registry: ModelRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with live_server(registry, _config(tmp_path / "a")) as a, a.client(headers=auth) as client:
        reference = _ivf_source(client)
        centroids = _centroids(a.app.state.service, "ivf")
        _export(client, "ivf", tmp_path / "ivf.tar")
        assert main(["export", "ivf", str(tmp_path / "cli.tar"), "--url", a.url, "--api-key", ADMIN]) == 0
    old = _repack(tmp_path / "ivf.tar", tmp_path / "v1.tar", _version_1)
    with live_server(registry, _config(tmp_path / "b")) as b, b.client(headers=auth) as client:
        resp = _import(client, tmp_path / "ivf.tar", "copy")
        assert resp.status_code == 201, resp.text
        assert resp.json()["indexes"] == {"dense": "snapshot", "bm25": "snapshot"}
        assert _opened(b, "copy") == "snapshot"  # adopted, not rebuilt: the IVF was not trained again
        np.testing.assert_array_equal(_centroids(b.app.state.service, "copy"), centroids)
        assert _results(client, "copy") == reference  # the same hits, scores equal exactly, every mode
        capsys.readouterr()
        assert main(["import", str(tmp_path / "cli.tar"), "--name", "cli", "--url", b.url, "--api-key", ADMIN]) == 0
        assert "indexes: dense snapshot, bm25 snapshot" in capsys.readouterr().out
        resp = _import(client, old, "old")  # format version 1: no snapshots, every index built from the rows
        assert resp.status_code == 201, resp.text
        assert resp.json()["indexes"] == {"dense": "rebuilt", "bm25": "rebuilt"} and _opened(b, "old") == "rebuild"
        assert not np.array_equal(_centroids(b.app.state.service, "old"), centroids)  # trained on other rows
        assert resp.json()["documents"] == client.get("/v1/collections/copy").json()["documents"] == 161
        rebuilt = _results(client, "old")
        assert {k: v for k, v in rebuilt.items() if k.startswith("bm25:")} == {
            k: v for k, v in reference.items() if k.startswith("bm25:")
        }
        schema = client.get("/docs/openapi.json").json()["components"]["schemas"]["ImportedCollection"]
        assert schema["properties"]["indexes"]["additionalProperties"]["enum"] == ["snapshot", "rebuilt"]
    with live_server(registry, _config(tmp_path / "b")) as b, b.client(headers=auth) as client:
        assert _opened(b, "copy") == _opened(b, "cli") == "snapshot"  # a restart loads the installed snapshots
        np.testing.assert_array_equal(_centroids(b.app.state.service, "copy"), centroids)
        assert _results(client, "copy") == reference
