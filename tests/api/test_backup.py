"""`POST /v1/admin/backup` and `retrieval backup` against a live server under a concurrent write stream: a server
started on each copy finds every document acknowledged before the backup began, each whole (issue 11, item 8)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from api.server import main
from encoder import Engine, ModelSpec
from retrieval import ModelRegistry, ServiceConfig
from tests.api._crash_stream import VOCAB as WORDS
from tests.api._server import live_server

COLL = "bk"
DOCS = f"/v1/collections/{COLL}/documents"
ADMIN, READ = "admin-key", "read-key"


@pytest.fixture(scope="module")
def registry(tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="tiny"))
    yield ModelRegistry([engine])
    engine.close()


def _text(i: int) -> str:
    return " ".join(WORDS[(i + j) % len(WORDS)] for j in range(3 + i % 11))  # 1 to 3 chunks of 8 tokens


class Stream(threading.Thread):
    """Writes new documents one request at a time; `acked` holds the ids answered 200, in order."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.acked: list[str] = []  # ids acknowledged so far
        self.stop = threading.Event()  # set to end the stream
        self.errors: list[str] = []  # unexpected answers

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        with httpx.Client(base_url=self.url, timeout=60, headers=headers) as client:
            i = 0
            while not self.stop.is_set():
                docs = [{"id": f"s{i + k}", "text": _text(i + k), "metadata": {"n": i + k}} for k in range(3)]
                try:
                    resp = client.post(DOCS, json={"documents": docs})
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    return
                if resp.status_code != 200:
                    self.errors.append(resp.text)
                    return
                self.acked += [d["id"] for d in docs]
                i += 3

    def wait_past(self, count: int) -> list[str]:
        """Block until more than `count` ids are acknowledged (the stream is still writing); a copy of them."""
        deadline = time.monotonic() + 60
        while len(self.acked) <= count and not self.errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.acked) > count, (count, self.errors)
        return list(self.acked)


def _check_copy(registry: ModelRegistry, copy: Path, before: list[str]) -> None:
    """A server on `copy` has every id of `before` with its text, and every document it has is whole."""
    with live_server(registry, ServiceConfig(data_dir=str(copy))) as server, server.client() as client:
        info = client.get(f"/v1/collections/{COLL}").json()
        assert info["documents"] >= len(before), info
        found = 0
        for n in range(info["documents"] + 12):
            resp = client.get(f"{DOCS}/s{n}")
            if resp.status_code == 404:
                assert f"s{n}" not in before
                continue
            found += 1
            body = resp.json()
            assert body["text"] == _text(n), body
            hits = client.post(
                f"/v1/collections/{COLL}/search",
                json={"query": body["text"], "mode": "bm25", "filter": {"n": n}, "top_k": 10},
            ).json()["data"]
            assert sorted(h["id"] for h in hits) == sorted(body["chunks"]), (n, hits)  # every chunk indexed
        assert found == info["documents"]


def test_backup_under_a_write_stream_by_endpoint_and_cli(registry: ModelRegistry, tmp_path: Path) -> None:
    root = tmp_path / "backups"
    config = ServiceConfig(
        data_dir=str(tmp_path / "data"),
        admin_keys=(ADMIN,),
        read_keys=(READ,),
        backup_root=str(root),
        snapshot_interval_s=0.1,
    )
    with live_server(registry, config) as server, server.client() as client:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        spec = {"name": COLL, "dense_model": "tiny", "chunking": {"max_tokens": 8, "overlap": 2}}
        assert client.post("/v1/collections", json=spec, headers=admin).status_code == 201
        stream = Stream(server.url)
        stream.start()
        before_api = stream.wait_past(29)
        resp = client.post("/v1/admin/backup", json={"destination": "one"}, headers=admin)
        assert resp.status_code == 201, resp.text
        made = resp.json()
        assert made["destination"] == str((root / "one").resolve()) and made["documents"] >= len(before_api)
        before_cli = stream.wait_past(len(before_api))  # writes go on across the backup
        assert main(["backup", str(tmp_path / "two"), "--data-dir", str(tmp_path / "data")]) == 0
        stream.wait_past(len(before_cli))
        stream.stop.set()
        stream.join(timeout=60)
        assert not stream.errors, stream.errors
    _check_copy(registry, root / "one", before_api)
    _check_copy(registry, tmp_path / "two", before_cli)


def test_backup_endpoint_is_admin_only_and_confined_to_its_root(registry: ModelRegistry, tmp_path: Path) -> None:
    root = tmp_path / "backups"
    (root / "taken").mkdir(parents=True)
    (root / "taken" / "file").write_text("x")
    config = ServiceConfig(admin_keys=(ADMIN,), read_keys=(READ,), backup_root=str(root))
    with live_server(registry, config) as server, server.client() as client:
        url = "/v1/admin/backup"
        assert client.post(url, json={"destination": "a"}).status_code == 401
        assert client.post(url, json={"destination": "a"}, headers={"X-API-Key": READ}).status_code == 403
        admin = {"X-API-Key": ADMIN}
        for bad in ("../escape", "a/b", str(tmp_path / "abs"), "taken"):
            resp = client.post(url, json={"destination": bad}, headers=admin)
            assert resp.status_code == 400 and resp.json()["error"]["param"] == "destination", resp.text
        assert not (tmp_path / "escape").exists() and not (tmp_path / "abs").exists()
        assert client.post(url, json={"destination": "a"}, headers=admin).status_code == 201
        assert (root / "a" / "backup.json").is_file() and (root / "a" / "store.sqlite3").is_file()
    with live_server(registry, ServiceConfig()) as server, server.client() as client:  # no backup_root: off
        resp = client.post("/v1/admin/backup", json={"destination": "a"})
        assert resp.status_code == 400 and "backup_root" in resp.json()["error"]["message"], resp.text
