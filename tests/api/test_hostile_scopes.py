"""Hostile keys (issue 27, items 2.1-2.3, 2.7 and the 403 / `/metrics` items of 2.12): a key scoped to `docs*` on
a server where the admin made the alias `docs-x -> other` (an in-scope name for an outside collection) and
`prod -> other` (another application's alias). Every surface resolves the alias and checks the collection as
well as the name: MCP tools, reindex (its target and `swap_alias`), bulk loads from server paths. A refusal
names only what the key gave, and `/metrics` needs an admin or metrics key once keys are set. Nothing refused
leaves anything behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from retrieval import ModelRegistry, ServiceConfig
from retrieval.common.access import ScopedKey
from tests.api._retrieval import assert_error
from tests.api._server import LiveServer, live_server

ADMIN, READ, METRICS = "adm-Hs1", "ro-Hs2", "met-Hs5"
S_READ, S_WRITE = "sr-Hs3", "sw-Hs4"  # `docs*` read, `docs*` write
COLL = "/v1/collections"
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture(scope="module")
def server(minilm_registry: ModelRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("bulk-root")
    (root / "rows.jsonl").write_text('{"id": "b1", "text": "a bulk row"}\n')
    config = ServiceConfig(
        admin_keys=(ADMIN,),
        read_keys=(READ,),
        metrics_keys=(METRICS,),
        scoped_keys=(ScopedKey(S_READ, ("docs*",), "read"), ScopedKey(S_WRITE, ("docs*",), "write")),
        bulk_root=str(root),
    )
    with live_server(minilm_registry, config) as live, live.client(headers=auth(ADMIN)) as admin:
        for name in ("docs1", "other"):
            assert admin.post(COLL, json={"name": name}).status_code == 201
            docs = [{"id": "d1", "text": f"the secret text of {name}", "metadata": {"owner": name}}]
            assert admin.post(f"{COLL}/{name}/documents", json={"documents": docs}).status_code == 200
        actions = [{"create_alias": {"alias_name": a, "collection_name": "other"}} for a in ("docs-x", "prod")]
        assert admin.post("/v1/aliases", json={"actions": actions}).status_code == 200
        yield live


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def mcp_call(client: httpx.Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """One stateless JSON-RPC `tools/call`; the tool's result (`isError`, `content`, `structuredContent`)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    resp = client.post("/mcp", json=body, headers=MCP_HEADERS)
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()["result"]
    return result


def _other_untouched(server: LiveServer) -> None:
    with server.client(headers=auth(ADMIN)) as admin:
        doc = admin.get(f"{COLL}/other/documents/d1").json()
        assert doc["text"] == "the secret text of other", doc
        assert admin.get(f"{COLL}/other").json()["documents"] == 1
        pairs = {a["alias_name"]: a["collection_name"] for a in admin.get("/v1/aliases").json()["data"]}
        assert pairs["prod"] == "other" and pairs["docs-x"] == "other", pairs


def test_mcp_checks_the_collection_an_alias_names(server: LiveServer) -> None:
    """2.1: MCP `search` / `get_document` / `add_documents` through `docs-x` reach `other`: refused, as REST is."""
    with server.client(headers=auth(S_READ)) as client:
        for tool, args in (
            ("search", {"collection": "docs-x", "query": "secret", "mode": "bm25"}),
            ("get_document", {"collection": "docs-x", "id": "d1"}),
        ):
            result = mcp_call(client, tool, args)
            text = result["content"][0]["text"]
            assert result["isError"] and "Forbidden" in text and "docs-x" in text, result
            assert "other" not in text and "secret" not in text, result  # no word of the outside collection
        ok = mcp_call(client, "search", {"collection": "docs1", "query": "secret", "mode": "bm25"})
        assert not ok["isError"] and [h["id"] for h in ok["structuredContent"]["data"]] == ["d1"], ok
    with server.client(headers=auth(S_WRITE)) as client:
        docs = [{"id": "d1", "text": "overwritten by a scoped key"}]
        result = mcp_call(client, "add_documents", {"collection": "docs-x", "documents": docs})
        assert result["isError"] and "Forbidden" in result["content"][0]["text"], result
        assert_error(client.post(f"{COLL}/docs-x/search", json={"query": "secret"}), 403, "docs-x")
    _other_untouched(server)


def _job_state(client: httpx.Client, job: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state: dict[str, Any] = client.get(f"/v1/jobs/{job}").json()
        if state["state"] in ("done", "failed"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job} did not end")


def test_reindex_cannot_take_over_or_create_aliases(server: LiveServer) -> None:
    """2.2 and 2.3: a scoped write key's reindex may not point `prod` (another application's alias) at its own
    collection, nor make a new alias, nor create a collection outside its patterns; 403 before any job."""
    with server.client(headers=auth(S_WRITE)) as client:
        for body in (
            {"target": "docs1-v2", "swap_alias": "prod"},
            {"target": "docs1-v3", "swap_alias": "brand-new-alias"},
            {"target": "docs1-v4", "swap_alias": "docs-alias"},  # in its patterns, but aliases are admin-only
        ):
            err = assert_error(client.post(f"{COLL}/docs1/reindex", json=body), 403, "alias")
            assert err["type"] == "ForbiddenError"
        assert_error(client.post(f"{COLL}/docs1/reindex", json={"target": "zzz-outside"}), 403, "zzz-outside")
        allowed = client.post(f"{COLL}/docs1/reindex", json={"target": "docs1-copy"})  # its own: still fine
        assert allowed.status_code == 202, allowed.text
        assert _job_state(client, allowed.json()["id"])["state"] == "done"
    with server.client(headers=auth(ADMIN)) as admin:
        names = {c["name"] for c in admin.get(COLL).json()["data"]}
        assert "zzz-outside" not in names and not {"docs1-v2", "docs1-v3", "docs1-v4"} & names, names
        pairs = {a["alias_name"] for a in admin.get("/v1/aliases").json()["data"]}
        assert pairs == {"docs-x", "prod"}, pairs
        assert admin.delete(f"{COLL}/docs1-copy").status_code == 200
    _other_untouched(server)


def test_server_path_bulk_is_for_admin_keys(server: LiveServer) -> None:
    """2.7: a scoped write key may not make the server read files under `bulk_root` (its own collection too)."""
    with server.client(headers=auth(S_WRITE)) as client:
        err = assert_error(client.post(f"{COLL}/docs1/bulk", json={"path": "rows.jsonl"}), 403, "admin")
        assert err["type"] == "ForbiddenError"
    with server.client(headers=auth(ADMIN)) as admin:
        assert admin.get(f"{COLL}/docs1/documents/b1").status_code == 404  # nothing was read
        done = admin.post(f"{COLL}/docs1/bulk", json={"path": "rows.jsonl"})
        assert done.status_code == 200 and done.json()["documents"] == 1, done.text
        assert admin.post(f"{COLL}/docs1/documents/delete", json={"ids": ["b1"]}).status_code == 200


def test_a_refusal_names_only_what_the_key_gave(server: LiveServer) -> None:
    """2.12: the 403 for the in-scope alias `docs-x` does not name `other`, the collection outside the scope."""
    with server.client(headers=auth(S_READ)) as client:
        for resp in (
            client.get(f"{COLL}/docs-x"),
            client.post(f"{COLL}/docs-x/search", json={"query": "x"}),
            client.get(f"{COLL}/docs-x/documents/d1"),
            client.get(f"{COLL}/docs-x/export"),
        ):
            assert_error(resp, 403, "docs-x")
            assert "other" not in resp.text, resp.text


def test_metrics_need_an_admin_or_metrics_key(server: LiveServer) -> None:
    """2.12: anonymous `/metrics` listed every collection's name; with keys set it needs an admin key or one of
    `metrics_keys` (Prometheus sends it as a bearer token)."""
    with server.client() as client:
        assert_error(client.get("/metrics"), 401, "API key")
        for key in (READ, S_READ, S_WRITE, "wrong"):
            resp = client.get("/metrics", headers=auth(key))
            assert resp.status_code in (401, 403) and "other" not in resp.text, (key, resp.status_code)
        for key in (ADMIN, METRICS):
            resp = client.get("/metrics", headers=auth(key))
            assert resp.status_code == 200 and "retrieval_http_requests" in resp.text, (key, resp.text[:200])
        for path in (COLL, f"{COLL}/docs1", "/v1/models"):  # a metrics key reaches nothing else
            assert_error(client.get(path, headers=auth(METRICS)), 403)
        assert_error(client.post("/v1/embeddings", json={"input": "x"}, headers=auth(METRICS)), 403)
        assert client.get("/livez").status_code == 200  # the probes stay open


def test_unsafe_requests_leave_the_data_dir_clean(server: LiveServer) -> None:
    """Nothing refused above left scratch files in the data directory."""
    for folder in ("transfers", "bulk-uploads"):
        path = server.data_dir / folder
        assert not path.exists() or not any(path.iterdir()), list(path.iterdir())
