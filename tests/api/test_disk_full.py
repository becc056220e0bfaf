"""Disk full and I/O errors under a live app (issue 11, item 2).

Faults are injected in the storage layer of the running service: through the store's commit seam (SQLite made
to fail for real with `PRAGMA max_page_count` -> SQLITE_FULL, an ENOSPC OSError, a SQLite "disk I/O error"),
and through `os.fsync` for the snapshot files. A write under a fault gets 507 (disk full) or 503 (other I/O
error), never a 2xx; reads and searches go on; writes succeed again once the fault is gone; after a restart
every acknowledged document is there and no refused one is; a failed snapshot leaves the previous one intact.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from api import create_app
from encoder import Engine, ModelSpec
from index.persist import verify_snapshot
from retrieval import ModelRegistry, ServiceConfig
from retrieval.service import RetrievalService

COLL = "disk"
DOCS = f"/v1/collections/{COLL}/documents"
Fault = Callable[[sqlite3.Connection], None]


@pytest.fixture(scope="module")
def registry(tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="tiny"))
    yield ModelRegistry([engine])
    engine.close()


@contextmanager
def _app(registry: ModelRegistry, data_dir: Path) -> Iterator[tuple[TestClient[Litestar], RetrievalService]]:
    config = ServiceConfig(data_dir=str(data_dir), snapshot_interval_s=3600)  # snapshots only when the test says
    with TestClient(create_app(config, registry), base_url="http://127.0.0.1") as client:  # a keyless server: loopback
        yield client, client.app.state.service


def _sqlite_full(conn: sqlite3.Connection) -> None:
    """Make SQLite itself run out of room inside the write transaction (SQLITE_FULL), as on a full disk."""
    limit = conn.execute("PRAGMA max_page_count").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    try:
        conn.execute("INSERT INTO meta (key, value) VALUES ('pad', zeroblob(1 << 20))")
    finally:
        conn.execute(f"PRAGMA max_page_count = {limit}")


def _enospc(_: sqlite3.Connection) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _eio(_: sqlite3.Connection) -> None:
    raise sqlite3.OperationalError("disk I/O error")


FAULTS: list[tuple[str, Fault, int, str]] = [
    ("sqlite-full", _sqlite_full, 507, "InsufficientStorageError"),
    ("enospc", _enospc, 507, "InsufficientStorageError"),
    ("eio", _eio, 503, "ServiceUnavailableError"),
]


def _doc(i: int, tag: str = "") -> dict[str, Any]:
    return {"id": f"d{i}{tag}", "text": f"lion tiger river {i} {tag}", "metadata": {"i": i}}


def _put(client: TestClient[Litestar], *docs: dict[str, Any]) -> int:
    return client.post(DOCS, json={"documents": list(docs)}).status_code


def _search(client: TestClient[Litestar]) -> list[tuple[str, float]]:
    resp = client.post(f"/v1/collections/{COLL}/search", json={"query": "lion river", "mode": "hybrid", "top_k": 50})
    assert resp.status_code == 200, resp.text
    return [(h["id"], round(h["score"], 6)) for h in resp.json()["data"]]


def _refused(client: TestClient[Litestar], status: int, type_: str) -> None:
    """Every kind of write answers `status` with the error body; nothing of it becomes visible."""
    for resp in (
        client.post(DOCS, json={"documents": [_doc(90), _doc(0, "x")]}),
        client.post(f"{DOCS}/delete", json={"ids": ["d1"]}),
        client.delete(f"{DOCS}/d2"),
        client.post("/v1/collections", json={"name": "other", "dense_model": "tiny"}),
    ):
        assert resp.status_code == status, resp.text
        error = resp.json()["error"]
        assert error["type"] == type_ and "nothing was written" in error["message"], error
        assert "sqlite" not in error["message"].lower() and "/" not in error["message"], error  # no paths leak


@pytest.mark.parametrize(("name", "fault", "status", "type_"), FAULTS, ids=[f[0] for f in FAULTS])
def test_write_fault_refuses_writes_keeps_reads_and_recovers(
    registry: ModelRegistry, tmp_path: Path, name: str, fault: Fault, status: int, type_: str
) -> None:
    with _app(registry, tmp_path / "data") as (client, service):
        assert client.post("/v1/collections", json={"name": COLL, "dense_model": "tiny"}).status_code == 201
        assert _put(client, *(_doc(i) for i in range(5))) == 200
        served = _search(client)
        service.store.before_commit = fault
        _refused(client, status, type_)
        assert client.get(f"{DOCS}/d0").json()["text"] == _doc(0)["text"]  # reads go on
        assert client.get(f"{DOCS}/d90").status_code == 404 and client.get(f"{DOCS}/d1").status_code == 200
        assert _search(client) == served  # the indexes saw nothing of the refused writes
        service.store.before_commit = None  # space is back
        assert _put(client, _doc(5), _doc(0, "x")) == 200
        assert client.post(f"{DOCS}/delete", json={"ids": ["d1"]}).status_code == 200
        assert {h[0] for h in _search(client)} == {"d0", "d2", "d3", "d4", "d5", "d0x"}
    with _app(registry, tmp_path / "data") as (client, _):  # restarted: everything acknowledged is there
        assert {h[0] for h in _search(client)} == {"d0", "d2", "d3", "d4", "d5", "d0x"}
        assert client.get(f"/v1/collections/{COLL}").json()["documents"] == 6
        assert client.get("/v1/collections/other").status_code == 404


@contextmanager
def _fsync_fails(monkeypatch: pytest.MonkeyPatch, marker: str) -> Iterator[list[str]]:
    """`os.fsync` raises ENOSPC for files whose path holds `marker` (a snapshot's temporary manifest)."""
    real = os.fsync
    failed: list[str] = []

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if marker in path:
            failed.append(path)
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real(fd)

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", fsync)
        yield failed


def test_failed_snapshot_write_keeps_the_previous_snapshot(
    registry: ModelRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    with _app(registry, data) as (client, service):
        assert client.post("/v1/collections", json={"name": COLL, "dense_model": "tiny"}).status_code == 201
        assert _put(client, *(_doc(i) for i in range(5))) == 200
        service.save_snapshots()
        folders = [data / "indexes" / COLL / family for family in ("dense", "bm25")]
        before = {f: (f / "manifest.json").read_bytes() for f in folders}
        assert _put(client, _doc(5)) == 200
        with _fsync_fails(monkeypatch, "manifest.json.tmp-") as failed:
            service.save_snapshots()  # the new data files are in place; the manifest (the commit point) fails
        assert failed and "snapshot of disk failed" in caplog.text
        for folder in folders:
            assert (folder / "manifest.json").read_bytes() == before[folder]  # the previous snapshot stands
            verify_snapshot(folder)  # and names whole files whose checksums match
            assert not [p for p in folder.iterdir() if ".tmp-" in p.name]
        assert _put(client, _doc(6)) == 200  # the store never noticed
        served = _search(client)
    with _app(registry, data) as (client, service):
        assert service.opened[COLL] == "snapshot"
        assert _search(client) == served and {h[0] for h in served} == {f"d{i}" for i in range(7)}
