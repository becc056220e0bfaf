"""Scoped keys end to end (issue 22, item 4): two applications share one server, each key bound to its own
collection name patterns with `read` or `write` access, plus the global admin key. A key lists only its
collections, reads and writes only where its scopes say (403 elsewhere), sees only its collections' jobs, and
reaches the model endpoints only with the `models` scope. Keys come from `--config` or the environment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from retrieval import ModelRegistry, ServiceConfig
from retrieval.cli import config_from_args
from retrieval.common.access import ScopedKey
from tests.api._retrieval import assert_error
from tests.api._server import LiveServer, live_server

ADMIN = "adm-Sc1"
APP_A = "app-a-Sc2"  # write on a-*, no models
APP_B = "app-b-Sc3"  # read on b-* and shared, models
COLL = "/v1/collections"


@pytest.fixture(scope="module")
def server(minilm_registry: ModelRegistry) -> Iterator[LiveServer]:
    config = ServiceConfig(
        admin_keys=(ADMIN,),
        scoped_keys=(
            ScopedKey(APP_A, ("a-*",), "write"),
            ScopedKey(APP_B, ("b-*", "shared"), "read", models=True),
        ),
        sync_upload_bytes=8,  # every upload runs as a job
    )
    with live_server(minilm_registry, config) as live:
        with live.client(headers=_auth(ADMIN)) as admin:
            for name in ("a-docs", "b-docs", "shared", "other"):
                assert admin.post(COLL, json={"name": name}).status_code == 201
                docs = [{"id": "d1", "text": f"a document of {name} about keys"}]
                assert admin.post(f"{COLL}/{name}/documents", json={"documents": docs}).status_code == 200
        yield live


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _names(client: httpx.Client) -> list[str]:
    resp = client.get(COLL)
    assert resp.status_code == 200, resp.text
    return [c["name"] for c in resp.json()["data"]]


def test_each_key_lists_only_its_collections(server: LiveServer) -> None:
    with server.client(headers=_auth(ADMIN)) as admin:
        assert set(_names(admin)) >= {"a-docs", "b-docs", "shared", "other"}
    with server.client(headers=_auth(APP_A)) as a:
        assert _names(a) == ["a-docs"]
    with server.client(headers=_auth(APP_B)) as b:
        assert _names(b) == ["b-docs", "shared"]


def test_a_write_key_writes_its_collections_only(server: LiveServer) -> None:
    docs = {"documents": [{"id": "x", "text": "written by app a"}]}
    with server.client(headers=_auth(APP_A)) as a:
        assert a.post(COLL, json={"name": "a-new"}).status_code == 201
        assert a.post(f"{COLL}/a-new/documents", json=docs).status_code == 200
        assert a.post(f"{COLL}/a-new/search", json={"query": "app a", "mode": "bm25"}).json()["data"][0]["id"] == "x"
        assert a.get(f"{COLL}/a-new/documents/x").status_code == 200
        assert a.delete(f"{COLL}/a-new").status_code == 200
        for resp in (
            a.post(COLL, json={"name": "b-stolen"}),
            a.post(f"{COLL}/b-docs/documents", json=docs),
            a.post(f"{COLL}/b-docs/search", json={"query": "keys"}),
            a.get(f"{COLL}/other"),
            a.get(f"{COLL}/shared/documents/d1"),
            a.delete(f"{COLL}/other"),
            a.post(f"{COLL}/other/documents/delete", json={"ids": ["d1"]}),
        ):
            err = assert_error(resp, 403, "may not")
            assert err["type"] == "ForbiddenError"
        assert_error(a.post("/v1/embeddings", json={"input": "keys"}), 403, "models")
        assert_error(a.post("/v1/admin/backup", json={"destination": "x"}), 403, "scoped")
    with server.client(headers=_auth(ADMIN)) as admin:
        assert admin.get(f"{COLL}/b-docs/documents/x").status_code == 404  # nothing was written
        assert admin.get(f"{COLL}/other/documents/d1").status_code == 200  # nor deleted


def test_a_read_key_reads_and_is_refused_writes(server: LiveServer) -> None:
    with server.client(headers=_auth(APP_B)) as b:
        hits = b.post(f"{COLL}/shared/search", json={"query": "keys"}).json()["data"]
        assert [h["id"] for h in hits] == ["d1"]
        assert b.get(f"{COLL}/b-docs/documents/d1").status_code == 200
        assert b.post("/v1/embeddings", json={"input": "keys"}).status_code == 200  # the models scope
        assert b.get("/v1/models").status_code == 200
        for resp in (
            b.post(f"{COLL}/b-docs/documents", json={"documents": [{"id": "y", "text": "no"}]}),
            b.post(f"{COLL}/shared/files", files=[("f", ("y.txt", b"not allowed", "text/plain"))]),
            b.delete(f"{COLL}/b-docs/documents/d1"),
            b.post(COLL, json={"name": "b-new"}),
            b.post(f"{COLL}/a-docs/search", json={"query": "keys"}),
        ):
            assert_error(resp, 403, "may not")


def test_jobs_are_seen_only_by_keys_of_their_collection(server: LiveServer) -> None:
    with server.client(headers=_auth(APP_A)) as a:
        resp = a.post(f"{COLL}/a-docs/files", files=[("f", ("n.txt", b"a note about jobs", "text/plain"))])
        assert resp.status_code == 202, resp.text
        job = resp.json()["job"]
        assert a.get(f"/v1/jobs/{job}").status_code == 200
    with server.client(headers=_auth(APP_B)) as b:
        assert_error(b.get(f"/v1/jobs/{job}"), 404, "does not exist")
    with server.client(headers=_auth(ADMIN)) as admin:
        assert admin.get(f"/v1/jobs/{job}").status_code == 200


def test_unknown_keys_are_401_as_before(server: LiveServer) -> None:
    with server.client(headers=_auth(APP_A + "x")) as c:
        assert_error(c.get(COLL), 401, "API key")
        assert_error(c.post(f"{COLL}/a-docs/search", json={"query": "keys"}), 401)


def test_scoped_keys_from_the_config_file_and_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"scoped_keys": [{"key": "f1", "collections": ["docs*"], "access": "read"}]}))
    env = {"RETRIEVAL_SCOPED_KEYS": json.dumps([{"key": "e1", "collections": ["a", "b*"], "access": "write"}])}
    cfg = config_from_args(["serve", "--config", str(file)], env=env)
    assert cfg.scoped_keys == (
        ScopedKey("f1", ("docs*",), "read"),
        ScopedKey("e1", ("a", "b*"), "write"),
    )
    assert cfg.has_keys
    grant = cfg.keys.grant_for(b"e1")
    assert grant is not None and grant.allows("b2", "write") and not grant.allows("docs", "read")
    with pytest.raises(SystemExit):
        config_from_args(["serve"], env={"RETRIEVAL_SCOPED_KEYS": '{"key": "not a list"}'})
    with pytest.raises(SystemExit):
        config_from_args(["serve"], env={"RETRIEVAL_SCOPED_KEYS": '[{"key": "k", "collections": [], "access": "all"}]'})
