"""`POST /v1/collections/{name}/bulk` end to end: a path under `bulk_root` or an Arrow IPC stream body, the
per-row report, 409 for vectors of another model, and a real server SIGKILLed mid-load then finishing the same
load on a rerun with every document exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from encoder import Engine, ModelFingerprint, ModelSpec
from retrieval.bulk import as_metadata, fingerprint_for
from retrieval.cli.commands.load import arrow_stream
from retrieval.sdk.client import RetrievalClient, RetrievalClientError
from retrieval.spec.collection import ChunkingSpec
from tests.api._crash import ForkLauncher, ServerProcess
from tests.api._server import LiveServer, bulk_server


@pytest.fixture(scope="module")
def engine(tiny_store: Callable[[str], Path]) -> Iterator[Engine]:
    e = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="tiny"))
    yield e
    e.close()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bulk-root")


@pytest.fixture(scope="module")
def server(engine: Engine, root: Path) -> Iterator[LiveServer]:
    with bulk_server(engine, root) as live:
        yield live


def _parquet(
    path: Path, engine: Engine, n: int, *, fingerprint: ModelFingerprint | None = None, own: bool = True
) -> Path:
    dim = engine.dimensions("embed")
    vecs = np.random.default_rng(n).standard_normal((n, dim)).astype(np.float32)
    table = pa.table(
        {
            "id": [f"d{i}" for i in range(n)],
            "text": [f"document number {i} on topic {i % 7}" for i in range(n)],
            "dense": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), dim),
        }
    )
    fp = fingerprint or (fingerprint_for(engine, "dense", ["dense"]) if own else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(as_metadata({"dense": fp}, ChunkingSpec()) if fp else None), path)
    return path


def _collection(client: httpx.Client, name: str) -> dict[str, Any]:
    resp = client.get(f"/v1/collections/{name}")
    if resp.status_code == 404:
        client.post("/v1/collections", json={"name": name, "dense_model": "tiny"}).raise_for_status()
        resp = client.get(f"/v1/collections/{name}")
    result: dict[str, Any] = resp.json()
    return result


def test_a_path_under_bulk_root_loads_with_a_report(server: LiveServer, engine: Engine, root: Path) -> None:
    _parquet(root / "set" / "a.parquet", engine, 30)
    with server.client() as client:
        _collection(client, "bypath")
        report = client.post("/v1/collections/bypath/bulk", json={"path": "set", "batch_documents": 7}).json()
        assert (report["documents"], report["batches"], report["failed"]) == (30, 5, 0), report
        assert _collection(client, "bypath")["documents"] == 30
        hits = client.post("/v1/collections/bypath/search", json={"query": "number 12", "mode": "bm25"}).json()
        assert hits["data"][0]["id"] == "d12"
        again = client.post("/v1/collections/bypath/bulk", json={"path": "set/a.parquet"}).json()
        assert (again["documents"], again["unchanged"]) == (0, 30)


@pytest.mark.parametrize("path", ["../outside", "/etc", "set/../../x"])
def test_paths_outside_bulk_root_are_refused(server: LiveServer, path: str) -> None:
    with server.client() as client:
        _collection(client, "bypath")
        resp = client.post("/v1/collections/bypath/bulk", json={"path": path})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "path", resp.text


def test_an_arrow_stream_body_loads_and_bad_rows_come_back_by_row(
    server: LiveServer, engine: Engine, tmp_path: Path
) -> None:
    path = _parquet(tmp_path / "s.parquet", engine, 12)
    table = pq.read_table(path)
    dense = table.column("dense").to_pylist()
    dense[3] = dense[3][:-1]
    dense[5][0] = float("nan")
    bad = table.set_column(2, "dense", pa.array(dense, pa.list_(pa.float32())))
    pq.write_table(bad, tmp_path / "bad.parquet")
    with server.client() as client:
        _collection(client, "stream")
    with RetrievalClient(server.url) as rc:
        report = rc.bulk_stream("stream", lambda: arrow_stream(str(tmp_path / "bad.parquet")), trust_vectors=True)
        assert report["documents"] == 10 and report["failed"] == 2
        assert [(r["row"], r["param"]) for r in report["rejected"]] == [(3, "vectors.dense"), (5, "vectors.dense")]
        assert rc.collection("stream")["documents"] == 10
    assert not list((server.data_dir / "bulk-uploads").glob("*")), "the spooled body is removed"


def test_vectors_of_another_model_are_a_409_and_nothing_is_written(
    server: LiveServer, engine: Engine, root: Path
) -> None:
    other = msgspec.structs.replace(fingerprint_for(engine, "dense", ["dense"]), model="b", weights_sha256="f" * 64)
    _parquet(root / "other.parquet", engine, 5, fingerprint=other)
    _parquet(root / "plain.parquet", engine, 5, own=False)
    with server.client() as client:
        _collection(client, "refuse")
        for name, words in (("other.parquet", "made by `b`"), ("plain.parquet", "say nothing")):
            resp = client.post("/v1/collections/refuse/bulk", json={"path": name})
            assert resp.status_code == 409 and words in resp.json()["error"]["message"], resp.text
        assert _collection(client, "refuse")["documents"] == 0
        trusted = client.post("/v1/collections/refuse/bulk", json={"path": "plain.parquet", "trust_vectors": True})
        assert trusted.json()["documents"] == 5


def test_unknown_collection_and_wrong_body_type(server: LiveServer) -> None:
    with server.client() as client:
        assert client.post("/v1/collections/nope/bulk", json={"path": "x"}).status_code == 404
        _collection(client, "bypath")
        resp = client.post("/v1/collections/bypath/bulk", content=b"x", headers={"Content-Type": "text/csv"})
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "content-type"
    with RetrievalClient(server.url) as rc, pytest.raises(RetrievalClientError) as err:
        rc.bulk_stream("bypath", lambda: [b"not arrow"])
    assert err.value.status == 400


def test_sigkill_during_a_load_then_a_rerun_leaves_every_document_once(
    fork_launcher: ForkLauncher, tiny_store: Callable[[str], Path], engine: Engine, tmp_path: Path
) -> None:
    n, batch = 20_000, 500
    bulk_root = tmp_path / "root"
    _parquet(bulk_root / "big.parquet", engine, n)
    proc = ServerProcess(fork_launcher, tiny_store("bert_st_mean"), tmp_path / "data", {"bulk_root": str(bulk_root)})
    proc.start()
    body = {"path": "big.parquet", "batch_documents": batch}
    outcome: list[object] = []

    def post() -> None:
        try:
            outcome.append(httpx.post(f"{proc.url}/v1/collections/default/bulk", json=body, timeout=120))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    poster = threading.Thread(target=post)
    poster.start()
    deadline = time.monotonic() + 60
    with proc.client() as client:
        while (stored := client.get("/v1/collections/default").json()["documents"]) < 2 * batch:
            assert time.monotonic() < deadline and not outcome, outcome
            time.sleep(0.01)
    proc.kill()
    poster.join(30)
    assert stored < n and isinstance(outcome[0], httpx.HTTPError), "killed mid-load"
    proc.start()
    with proc.client() as client:
        info = client.get("/v1/collections/default").json()
        assert info["documents"] % batch == 0 and info["documents"] == info["chunks"], info  # whole batches only
        before = info["documents"]
        report = client.post("/v1/collections/default/bulk", json=body, timeout=120).json()
        assert (report["documents"], report["unchanged"]) == (n - before, before), report
        info = client.get("/v1/collections/default").json()
        assert (info["documents"], info["chunks"]) == (n, n)
        for i in (0, before - 1, n - 1):
            hit = client.post("/v1/collections/default/search", json={"query": f"number {i}", "mode": "bm25"}).json()
            assert hit["data"][0]["id"] == f"d{i}"
    proc.terminate()
