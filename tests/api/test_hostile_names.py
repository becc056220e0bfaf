"""Hostile names and ids (issue 27, items 2.10 and the id / `swap_alias` items of 2.12): a name is matched whole, so
one ending in a newline is a 400 wherever a name is given (collection, alias, import name, backup folder, reindex
target and alias), and nothing of it is made; `swap_alias` is checked before the reindex job starts; document ids
are limited to 512 bytes of UTF-8 on every way in; a collection whose name predates these checks still exports,
and an export leaves no copy behind in `transfers/`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from retrieval import ModelRegistry, ServiceConfig
from retrieval.spec.collection import CollectionSpec, spec_to_json
from retrieval.store import MAX_ID_BYTES, Store
from tests.api._retrieval import assert_error
from tests.api._server import LiveServer, live_server
from tests.api.test_hostile_scopes import mcp_call
from tests.api.test_reindex import wait_job
from tests.conftest import MINILM

COLL = "/v1/collections"
LEGACY = "old\n"  # a name a store made before names were matched whole
LEGACY_URL = f"{COLL}/old%0A"


@pytest.fixture(scope="module")
def server(minilm_registry: ModelRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data, backups = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("backups")
    with Store.open(data / "store.sqlite3") as store:  # as an older server left it
        store.create_collection(LEGACY, spec_to_json(CollectionSpec(name=LEGACY, dense_model=MINILM)))
    config = ServiceConfig(data_dir=str(data), backup_root=str(backups))
    with live_server(minilm_registry, config) as live, live.client() as client:
        docs = [{"id": "d1", "text": "a document about names"}]
        assert client.post(f"{COLL}/default/documents", json={"documents": docs}).status_code == 200
        assert client.post(f"{LEGACY_URL}/documents", json={"documents": docs}).status_code == 200
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
        assert not list((server.data_dir / "transfers").glob("*"))  # never a copy left behind


def _collections(client: httpx.Client) -> set[str]:
    return {c["name"] for c in client.get(COLL).json()["data"]}


def _aliases(client: httpx.Client) -> set[str]:
    return {a["alias_name"] for a in client.get("/v1/aliases").json()["data"]}


def test_a_trailing_newline_is_no_name(server: LiveServer, client: httpx.Client) -> None:
    assert_error(client.post(COLL, json={"name": "lf2\n"}), 400, "name must")
    create = {"create_alias": {"alias_name": "al\n", "collection_name": "default"}}
    assert_error(client.post("/v1/aliases", json={"actions": [create]}), 400, "alias")
    archive = client.get(f"{COLL}/default/export").content
    imported = client.post(
        f"{COLL}/import", params={"name": "docsnl\n"}, content=archive, headers={"Content-Type": "application/x-tar"}
    )
    assert_error(imported, 400, "name must")
    assert_error(client.post("/v1/admin/backup", json={"destination": "bk\n"}), 400, "destination")
    assert not list(Path(server.app.state.config.backup_root).iterdir())  # no folder `bk\n`
    assert_error(client.post(f"{COLL}/default/reindex", json={"target": "t\n"}), 400, "name must")
    assert _collections(client) == {"default", LEGACY} and not _aliases(client)


@pytest.mark.parametrize("alias", ["../bad", "al\n", "", "x" * 129])
def test_an_invalid_swap_alias_is_refused_before_the_job(client: httpx.Client, alias: str) -> None:
    resp = client.post(f"{COLL}/default/reindex", json={"target": "default-v2", "swap_alias": alias})
    assert_error(resp, 400, "swap_alias")
    assert assert_error(resp, 400)["param"] == "swap_alias"
    assert "default-v2" not in _collections(client)  # no job, no target


def test_a_job_that_would_fail_is_refused_before_it_starts(minilm_registry: ModelRegistry) -> None:
    """2.12: a request is answered 202 only when it can succeed as far as can be told: an upload job into a
    collection a reindex job is building was accepted, then failed; now it is a 409 at once."""
    with live_server(minilm_registry, ServiceConfig(sync_upload_bytes=8)) as live, live.client() as client:
        service = live.app.state.service
        service.building["default"] = "a-reindex-job"  # as while a reindex job builds it
        try:
            files = [("f", ("n.txt", b"a note for a job", "text/plain"))]
            assert_error(client.post(f"{COLL}/default/files", files=files), 409, "reindex job")
            assert_error(client.post(f"{COLL}/default/bulk", json={"path": "x"}), 409, "reindex job")
        finally:
            service.building.pop("default")
        assert client.post(f"{COLL}/default/files", files=files).status_code == 202


def _id_of(n_bytes: int) -> str:
    return "é" * (n_bytes // 2) + "x" * (n_bytes % 2)  # two bytes per `é` in UTF-8


def test_document_ids_are_limited_on_every_way_in(server: LiveServer, client: httpx.Client) -> None:
    assert MAX_ID_BYTES == 512
    fits, over, huge = _id_of(MAX_ID_BYTES), _id_of(MAX_ID_BYTES + 1), "i" * 1_000_000
    assert client.post(f"{COLL}/default/documents", json={"documents": [{"id": fits, "text": "t"}]}).status_code == 200
    for given in (over, huge):
        resp = client.post(f"{COLL}/default/documents", json={"documents": [{"id": given, "text": "t"}]})
        assert "512 bytes" in assert_error(resp, 400)["message"]
        result = mcp_call(client, "add_documents", {"collection": "default", "documents": [{"id": given, "text": "t"}]})
        assert result["isError"] and "512 bytes" in result["content"][0]["text"], result
    rows = f'{{"id": "{over}", "text": "too long"}}\n{{"id": "ok", "text": "fine"}}\n'.encode()
    upload = client.post(f"{COLL}/default/files", files=[("f", ("rows.jsonl", rows, "application/json"))])
    assert upload.status_code in (200, 400) and "512 bytes" in upload.text, upload.text
    assert client.get(f"{COLL}/default/documents/{over}").status_code == 404


def test_a_legacy_name_still_exports_and_nothing_is_left(server: LiveServer, client: httpx.Client) -> None:
    """An older store's `old\\n` exported dropped the connection (an invalid Content-Disposition) and left the
    export's copy in `transfers/`; now it answers with a safe file name."""
    resp = client.get(f"{LEGACY_URL}/export")
    assert resp.status_code == 200, resp.text
    disposition = resp.headers["content-disposition"]
    assert "\n" not in disposition and disposition.startswith("attachment;"), disposition
    assert len(resp.content) > 1024
    time.sleep(0.2)
    assert not list((server.data_dir / "transfers").glob("*"))


def test_an_export_cut_off_by_its_client_leaves_nothing(server: LiveServer) -> None:
    with server.client() as client, client.stream("GET", f"{COLL}/default/export") as resp:
        assert resp.status_code == 200
        next(resp.iter_raw(512))  # then hang up
    deadline = time.monotonic() + 10
    while list((server.data_dir / "transfers").glob("*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list((server.data_dir / "transfers").glob("*"))


def test_a_job_id_is_matched_whole(client: httpx.Client) -> None:
    """Job ids too are matched whole: the id of a real job with a newline (or a space) after it is no job."""
    started = client.post(f"{COLL}/default/reindex", json={"target": "jobs-copy"})
    assert started.status_code == 202, started.text
    job = started.json()["id"]
    try:
        wait_job(client, job)
        assert client.get(f"/v1/jobs/{job}").status_code == 200
        for near in (f"{job}%0A", f"{job}%20", f"%0A{job}"):
            assert_error(client.get(f"/v1/jobs/{near}"), 404, "does not exist")
            assert_error(client.post(f"/v1/jobs/{near}/cancel"), 404, "does not exist")
    finally:
        client.delete(f"{COLL}/jobs-copy")
